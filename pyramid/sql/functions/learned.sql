-- Whether an item is a retired learned recollection (kept for its audit trail, never a search hit).
CREATE OR REPLACE FUNCTION pyramid_retired(item bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT EXISTS (SELECT 1 FROM learned_recollections r WHERE r.item_id = $1 AND r.status = 'retired') $$;
