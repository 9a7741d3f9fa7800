-- 005: a document can be stored 'partial': some of its model calls failed, it holds what worked
-- (pages always), the error column says what failed, and the next run re-distills it.
ALTER TABLE documents DROP CONSTRAINT IF EXISTS documents_status_check;
ALTER TABLE documents ADD CONSTRAINT documents_status_check
    CHECK (status IN ('pending', 'converted', 'distilled', 'ready', 'partial', 'failed'));
