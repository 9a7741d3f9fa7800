-- Named queries for maintenance work (re-embedding).

-- name: embedding_indexes
SELECT indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = 'items' AND indexdef LIKE '%%(embedding%%'

-- name: count_items
SELECT count(*) FROM items

-- name: items_after
SELECT id, text FROM items WHERE id > %(after)s ORDER BY id LIMIT %(limit)s

-- name: set_embedding
UPDATE items SET embedding = %(embedding)s WHERE id = %(id)s
