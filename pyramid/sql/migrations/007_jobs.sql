-- 007: the ingest queue. One job per (file, sha256 of the file when it was enqueued): `pyramid
-- ingest --workers N` (or Pyramid.enqueue) queues them, any number of `pyramid worker`
-- processes on any machines claim jobs (FOR UPDATE SKIP LOCKED) under a lease that they renew by
-- heartbeat. A worker marks its job done in the transaction that writes the document, after
-- checking inside it that it still holds the lease, so a worker that lost its lease writes nothing.
CREATE TABLE ingest_jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text NOT NULL,                  -- the file's absolute path (a feed file is one job)
    sha256        text NOT NULL,                  -- the file's sha256 when it was enqueued
    size          bigint NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,     -- claims so far (a lease that expired counts)
    max_attempts  integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    lease_owner   text,                           -- the worker holding it: host:pid:random
    lease_expires timestamptz,
    heartbeat_at  timestamptz,
    run_after     timestamptz NOT NULL DEFAULT now(),  -- a failed attempt waits before the next
    last_error    text,
    results       jsonb NOT NULL DEFAULT '[]'::jsonb,  -- what the last attempt did, per document
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    UNIQUE (source, sha256)
);
-- What a claim scans: the claimable jobs in order.
CREATE INDEX ingest_jobs_claimable ON ingest_jobs (id) WHERE status IN ('queued', 'running');
-- One job of a file at a time: the claim looks for an older unfinished job of the same file.
CREATE INDEX ingest_jobs_source_active ON ingest_jobs (source, id) WHERE status IN ('queued', 'running');
CREATE INDEX ingest_jobs_failed ON ingest_jobs (id) WHERE status = 'failed';
