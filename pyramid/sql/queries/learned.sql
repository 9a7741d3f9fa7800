-- Named queries of the learned recollections (`ask --learn`, `recollections`, `recollections verify`).

-- name: lock
-- Held to the end of the transaction: one finding is matched and written at a time.
SELECT pg_advisory_xact_lock(%(namespace)s, pyramid_write_collection())

-- name: cited_items
-- Only items of the collection learned into: a learned recollection rests on its own collection
-- (an answer over several collections learns from the citations of the first).
SELECT i.id, i.level, i.text, i.content_hash, i.document_id, i.pages, d.source, d.path,
       coalesce(nullif(d.title, ''), d.source) AS title
FROM items i
LEFT JOIN documents d ON d.id = i.document_id
WHERE i.id = ANY(%(ids)s) AND i.collection_id = pyramid_write_collection()

-- name: same_finding
-- The live learned recollection this finding repeats: the same cited items first, else the most
-- similar one at or above the threshold.
SELECT r.item_id, i.text, i.stale, r.question, r.model, r.cited, r.status, r.updated_at,
       r.sources_key = %(key)s AS same_items, 1 - (i.embedding <=> %(embedding)s::vector) AS similarity
FROM learned_recollections r
JOIN items i ON i.id = r.item_id
WHERE r.collection_id = pyramid_write_collection() AND r.status <> 'retired'
  AND (r.sources_key = %(key)s OR 1 - (i.embedding <=> %(embedding)s::vector) >= %(threshold)s)
ORDER BY (r.sources_key = %(key)s) DESC, i.embedding <=> %(embedding)s::vector, r.item_id
LIMIT 1

-- name: insert
INSERT INTO learned_recollections (item_id, sources_key, question, model, cited)
VALUES (%(item)s, %(key)s, %(question)s, %(model)s, %(cited)s)

-- name: insert_sources
-- Each cited item with its document: the stale triggers watch both.
INSERT INTO item_sources (item_id, source_item_id, source_document_id, source_ref)
SELECT %(item)s, s.item, s.document, s.ref
FROM unnest(%(items)s::bigint[], %(documents)s::bigint[], %(refs)s::text[]) AS s(item, document, ref)

-- name: delete_sources
DELETE FROM item_sources WHERE item_id = %(item)s

-- name: rewrite_item
UPDATE items SET text = %(text)s, embedding = %(embedding)s, content_hash = %(hash)s, stale = false
WHERE id = %(item)s

-- name: revise
UPDATE learned_recollections
SET sources_key = %(key)s, question = %(question)s, model = %(model)s, cited = %(cited)s,
    status = %(status)s, history = history || %(entry)s::jsonb, updated_at = now()
WHERE item_id = %(item)s

-- name: judge
-- A verdict of `recollections verify`: status, what it cites now, one history entry.
UPDATE learned_recollections
SET status = %(status)s, cited = %(cited)s, history = history || %(entry)s::jsonb, verified_at = now(),
    updated_at = CASE WHEN %(status)s = status THEN updated_at ELSE now() END
WHERE item_id = %(item)s

-- name: unstale
UPDATE items SET stale = false WHERE id = %(item)s AND stale

-- name: to_verify
SELECT r.item_id, i.text, i.stale, r.status, r.cited, r.question, r.model
FROM learned_recollections r
JOIN items i ON i.id = r.item_id
WHERE r.collection_id = pyramid_write_collection() AND r.status <> 'retired' AND (%(every)s OR i.stale)
ORDER BY r.item_id

-- name: same_text_in
-- The item of a document (by source) that now holds a cited text: a re-distilled document can
-- give an unchanged insight a new id.
SELECT i.id, i.level, i.text, i.content_hash, i.document_id, i.pages, d.source, d.path,
       coalesce(nullif(d.title, ''), d.source) AS title
FROM items i
JOIN documents d ON d.id = i.document_id
WHERE d.collection_id = pyramid_write_collection() AND d.source = %(source)s AND i.level = %(level)s AND i.content_hash = %(hash)s
ORDER BY i.id
LIMIT 1

-- name: list
-- Every recollection with its kind and status; filters before anything is read in Python.
SELECT * FROM (
    SELECT i.id, i.text, i.created_at, i.stale,
           CASE WHEN i.distiller = 'learned' THEN 'learned' WHEN i.distiller = 'user' THEN 'user'
                ELSE 'distilled' END AS kind,
           CASE WHEN r.status = 'retired' THEN 'retired' WHEN i.stale THEN 'stale'
                ELSE coalesce(r.status, 'valid') END AS status,
           coalesce(i.distiller, '') AS distiller, r.question, r.model, coalesce(r.history, '[]'::jsonb) AS history,
           r.updated_at, r.verified_at
    FROM items i
    LEFT JOIN learned_recollections r ON r.item_id = i.id
    WHERE i.level = 'recollection' AND pyramid_in_scope(i.collection_id)
      AND (%(id)s::bigint IS NULL OR i.id = %(id)s)
) x
WHERE (%(kinds)s::text[] IS NULL OR x.kind = ANY(%(kinds)s))
  AND (NOT %(stale)s OR x.stale)
  AND (%(retired)s OR x.status <> 'retired')
ORDER BY x.id

-- name: sources
-- The audit trail of recollections: each source item (or whole document) with its pages and file;
-- source_ref names what is gone.
SELECT s.item_id AS recollection, s.source_item_id, coalesce(src.document_id, s.source_document_id) AS document_id,
       s.source_ref, src.level, src.text, coalesce(src.pages, '{}') AS pages, d.source, d.path,
       coalesce(nullif(d.title, ''), d.source) AS title
FROM item_sources s
LEFT JOIN items src ON src.id = s.source_item_id
LEFT JOIN documents d ON d.id = coalesce(src.document_id, s.source_document_id)
WHERE s.item_id = ANY(%(ids)s) AND pyramid_in_scope(s.collection_id)
ORDER BY s.item_id, s.id

-- name: current_on_pages
-- What a document (by source) says now on the pages a gone item stood on, at that item's level.
SELECT i.id, i.level, i.text, i.content_hash, i.document_id, i.pages, d.source, d.path,
       coalesce(nullif(d.title, ''), d.source) AS title
FROM items i
JOIN documents d ON d.id = i.document_id
WHERE d.collection_id = pyramid_write_collection() AND d.source = %(source)s AND i.level = %(level)s
  AND i.pages && %(pages)s::integer[]
ORDER BY i.ordinal, i.id
LIMIT %(limit)s
