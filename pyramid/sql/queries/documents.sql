-- Named queries about documents. Values are always bound parameters.

-- name: by_paths
-- The stored state of many files in one round trip (a sync of unchanged files asks for all of them).
SELECT path, id, source, file_sha256, sha256, status
FROM documents
WHERE collection_id = pyramid_write_collection() AND path = ANY(%(paths)s)

-- name: lock_source
SELECT id, sha256, status
FROM documents
WHERE collection_id = pyramid_write_collection() AND source = %(source)s
FOR UPDATE

-- name: insert
INSERT INTO documents (source, path, file_sha256, sha256, title, format, page_count, paged, status,
                       error, distiller, usage, meta, file_size, file_mtime)
VALUES (%(source)s, %(path)s, %(file_sha256)s, %(sha256)s, %(title)s, %(format)s, %(page_count)s,
        %(paged)s, %(status)s, %(error)s, %(distiller)s, %(usage)s, %(meta)s, %(file_size)s, %(file_mtime)s)
RETURNING id

-- name: update
UPDATE documents
SET path = %(path)s, file_sha256 = %(file_sha256)s, sha256 = %(sha256)s, title = %(title)s,
    format = %(format)s, page_count = %(page_count)s, paged = %(paged)s, status = %(status)s,
    error = %(error)s, distiller = %(distiller)s, usage = %(usage)s, meta = %(meta)s,
    file_size = %(file_size)s, file_mtime = %(file_mtime)s, updated_at = now()
WHERE id = %(id)s AND collection_id = pyramid_write_collection()

-- name: set_status
UPDATE documents
SET status = %(status)s, error = %(error)s, updated_at = now()
WHERE id = %(id)s

-- name: mark_failed
-- A failed attempt keeps the stored version (its items, its sha256) and only records the reason,
-- so the next run retries and readers keep what they had.
UPDATE documents
SET status = 'failed', error = %(error)s, file_sha256 = %(file_sha256)s, updated_at = now()
WHERE collection_id = pyramid_write_collection() AND source = %(source)s
RETURNING id

-- name: insert_failed
INSERT INTO documents (source, path, file_sha256, title, status, error)
VALUES (%(source)s, %(path)s, %(file_sha256)s, %(title)s, 'failed', %(error)s)
ON CONFLICT (collection_id, source) DO UPDATE
SET status = 'failed', error = excluded.error, file_sha256 = excluded.file_sha256, updated_at = now()
RETURNING id

-- name: delete
DELETE FROM documents WHERE id = ANY(%(ids)s) RETURNING id, source

-- name: list
-- Documents with their item counts per level: every one (optionally of one status), or the one id.
SELECT d.id, d.source, d.path, d.title, d.format, d.page_count, d.status, d.error, d.distiller,
       d.sha256, d.ingested_at, d.updated_at, d.usage,
       coalesce((SELECT jsonb_object_agg(level, n)
                 FROM (SELECT level, count(*) AS n FROM items i
                       WHERE i.document_id = d.id GROUP BY level) counts), '{}'::jsonb) AS items
FROM documents d
WHERE pyramid_in_scope(d.collection_id)
  AND (%(status)s::text IS NULL OR d.status = %(status)s)
  AND (%(id)s::bigint IS NULL OR d.id = %(id)s)
ORDER BY d.source

-- name: find
-- A user names a document by id, by its exact source, by a path relative to where they stand
-- (resolved by the caller), or by a unique suffix of the source or of its file such as the file
-- name. Grouped by file: a feed's items share theirs, so "news.rss" names every one of them.
SELECT path, array_agg(id ORDER BY id) AS ids FROM documents
WHERE pyramid_in_scope(collection_id)
  AND (source = %(ref)s OR path = %(ref)s
       OR source LIKE ('%%/' || %(suffix)s) ESCAPE '\' OR path LIKE ('%%/' || %(suffix)s) ESCAPE '\')
GROUP BY path
ORDER BY bool_or(path = %(ref)s) DESC, path
LIMIT 10

-- name: exact
SELECT id FROM documents WHERE pyramid_in_scope(collection_id) AND source = %(ref)s

-- name: touch_file_hash
UPDATE documents SET file_sha256 = %(file_sha256)s WHERE id = %(id)s

-- name: under_root
-- The documents whose file is the given path or lies below the given folder.
SELECT id, source, path FROM documents
WHERE collection_id = pyramid_write_collection() AND (path = %(root)s OR path LIKE %(prefix)s ESCAPE '\')
ORDER BY source

-- name: corpus_changed
UPDATE collections SET corpus_changed = true WHERE id = pyramid_write_collection() AND NOT corpus_changed

-- name: pending_corpus
SELECT id FROM documents WHERE collection_id = pyramid_write_collection() AND status = 'distilled' ORDER BY id

-- name: corpus_flag
SELECT corpus_changed AS changed FROM collections WHERE id = pyramid_write_collection()

-- name: corpus_done
-- The corpus step is done for these documents: they are ready, and no removal is pending.
WITH ready AS (
    UPDATE documents SET status = 'ready', updated_at = now()
    WHERE id = ANY(%(ids)s) AND status = 'distilled'
)
UPDATE collections SET corpus_changed = false WHERE id = pyramid_write_collection() AND corpus_changed
