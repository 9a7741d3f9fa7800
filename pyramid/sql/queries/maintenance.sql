-- Named queries for maintenance work (re-embedding).

-- name: embedding_indexes
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = 'items' AND indexdef LIKE '%%(embedding%%'

-- name: count_items
SELECT count(*) AS total FROM items

-- name: items_after
SELECT id, level, title, text FROM items WHERE id > %(after)s ORDER BY id LIMIT %(limit)s

-- name: set_embedding
UPDATE items SET embedding = %(embedding)s WHERE id = %(id)s

-- name: probe_items
-- A fixed, spread-out sample for the encoder probe: the same items every time. Pages and insights
-- only: their embedding is of their text (a concept's is of "title: text").
SELECT text, embedding FROM items
WHERE embedding IS NOT NULL AND level IN ('page', 'insight')
ORDER BY md5(id::text) LIMIT %(limit)s

-- name: embedding_probes
SELECT value FROM pyramid_meta WHERE key = 'embedding_probes'

-- name: claim_unembedded
-- Items stored without a vector (by workers that leave embedding to others), oldest first, locked
-- until the claiming transaction ends: any number of embedding workers share them, and a killed
-- one's rows are free again at once.
SELECT id, level, title, text FROM items
WHERE embedding IS NULL AND collection_id = pyramid_write_collection()
ORDER BY id LIMIT %(limit)s
FOR UPDATE SKIP LOCKED

-- name: count_unembedded
SELECT count(*) AS total FROM items WHERE embedding IS NULL AND pyramid_in_scope(collection_id)
