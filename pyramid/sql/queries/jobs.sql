-- Named queries of the ingest queue (ingest_jobs, migration 007). Values are always bound parameters.
-- A worker works for one collection: the one its session writes to (pyramid_write_collection()).

-- name: enqueue
-- One job per (file, sha256): enqueuing twice, or two scans at once, leave one. A queued job of an
-- older version of the same file is dropped (the file changed before anyone took it); a done job is
-- queued again only because the scan found the stored document differs from the file (a file that
-- went back to an earlier content, a document removed since).
WITH given AS (
    SELECT * FROM unnest(%(sources)s::text[], %(shas)s::text[], %(sizes)s::bigint[]) AS g (source, sha256, size)
), superseded AS (
    DELETE FROM ingest_jobs j USING given g
    WHERE j.collection_id = pyramid_write_collection() AND j.source = g.source AND j.sha256 <> g.sha256 AND j.status = 'queued'
    RETURNING j.id
)
INSERT INTO ingest_jobs (source, sha256, size, max_attempts)
SELECT source, sha256, size, %(max_attempts)s FROM given
ON CONFLICT (collection_id, source, sha256) DO UPDATE
SET status = 'queued', attempts = 0, max_attempts = excluded.max_attempts, run_after = now(),
    last_error = NULL, results = '[]'::jsonb, lease_owner = NULL, lease_expires = NULL,
    heartbeat_at = NULL, enqueued_at = now(), started_at = NULL, finished_at = NULL
WHERE ingest_jobs.status = 'done'
RETURNING id, (xmax = 0) AS inserted

-- name: ids_of
SELECT id, source, status FROM ingest_jobs WHERE collection_id = pyramid_write_collection() AND (source, sha256) IN (
    SELECT * FROM unnest(%(sources)s::text[], %(shas)s::text[])
)

-- name: expire
-- A job whose lease ran out as often as it may be tried (a file that kills every worker that
-- takes it) is failed instead of being claimed again.
UPDATE ingest_jobs
SET status = 'failed', finished_at = now(),
    last_error = 'the lease of ' || coalesce(lease_owner, '?') || ' expired (attempt ' || attempts
                 || ' of ' || max_attempts || '): the worker stopped or lost the database'
WHERE collection_id = pyramid_write_collection() AND status = 'running' AND lease_expires < now() AND attempts >= max_attempts
RETURNING id

-- name: claim
-- The oldest claimable jobs: queued and due, or running under a lease that expired. A job waits
-- while an older job of the same file is unfinished, so one file is worked on by one worker at a
-- time and its versions are written in order. SKIP LOCKED: claims never wait on one another.
WITH next AS (
    SELECT j.id
    FROM ingest_jobs j
    WHERE j.collection_id = pyramid_write_collection()
      AND ((j.status = 'queued' AND j.run_after <= now())
           OR (j.status = 'running' AND j.lease_expires < now()))
      AND NOT EXISTS (
          SELECT 1 FROM ingest_jobs o
          WHERE o.collection_id = j.collection_id AND o.source = j.source AND o.id < j.id AND o.status IN ('queued', 'running'))
    ORDER BY j.id
    LIMIT %(limit)s
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE ingest_jobs j
SET status = 'running', lease_owner = %(owner)s,
    lease_expires = now() + make_interval(secs => %(lease)s), heartbeat_at = now(),
    attempts = j.attempts + 1, started_at = now(),
    last_error = CASE WHEN j.status = 'running'
                      THEN 'the lease of ' || coalesce(j.lease_owner, '?') || ' expired'
                      ELSE j.last_error END
FROM next
WHERE j.id = next.id
RETURNING j.id, j.source, j.sha256, j.attempts, j.max_attempts

-- name: heartbeat
UPDATE ingest_jobs
SET heartbeat_at = now(), lease_expires = now() + make_interval(secs => %(lease)s)
WHERE id = ANY(%(ids)s) AND lease_owner = %(owner)s AND status = 'running'
RETURNING id

-- name: hold
-- Inside a document's write transaction: the job is still this worker's (row-locked until the
-- commit, so no other worker can claim it in between).
SELECT id FROM ingest_jobs
WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'running'
FOR UPDATE

-- name: complete
UPDATE ingest_jobs
SET status = 'done', finished_at = now(), lease_expires = NULL, last_error = NULL
WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'running'
RETURNING id

-- name: set_results
UPDATE ingest_jobs SET results = %(results)s
WHERE id = %(id)s AND lease_owner = %(owner)s

-- name: fail
-- A failed attempt: queued again after a delay that grows with the attempts, or failed for good
-- (the dead letter) after max_attempts.
UPDATE ingest_jobs
SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
    last_error = %(error)s, results = %(results)s, lease_expires = NULL,
    run_after = now() + make_interval(secs => %(delay)s * attempts),
    finished_at = CASE WHEN attempts >= max_attempts THEN now() END
WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'running'
RETURNING status

-- name: counts
SELECT status, count(*) AS n FROM ingest_jobs
WHERE collection_id = pyramid_write_collection() AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
GROUP BY status

-- name: list
SELECT id, source, sha256, size, status, attempts, max_attempts, lease_owner, lease_expires,
       heartbeat_at, last_error, results, enqueued_at, started_at, finished_at
FROM ingest_jobs
WHERE collection_id = pyramid_write_collection() AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
ORDER BY id

-- name: retry
UPDATE ingest_jobs
SET status = 'queued', attempts = 0, run_after = now(), lease_owner = NULL, lease_expires = NULL,
    finished_at = NULL
WHERE collection_id = pyramid_write_collection() AND status = 'failed' AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))
RETURNING id
