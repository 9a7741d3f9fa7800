-- Named queries about items of every level and their provenance.

-- name: reserve_ids
-- Item ids are taken before COPY so that provenance rows can name items written in the same batch.
SELECT nextval(pg_get_serial_sequence('items', 'id')) AS id FROM generate_series(1, %(n)s)

-- name: copy
COPY items (id, document_id, level, ordinal, title, text, pages, embedding, content_hash, distiller,
            stale, meta)
FROM STDIN (FORMAT BINARY)

-- name: copy_sources
COPY item_sources (item_id, source_item_id, source_document_id, source_ref) FROM STDIN (FORMAT BINARY)

-- name: rls_active
-- Whether row-level security applies to this session's writes (a role granted access to a
-- collection, not the owner). PostgreSQL does not COPY into such a table: the rows go through a
-- session's temporary table and one INSERT instead (stage, copy_staged, insert_staged).
SELECT row_security_active('items') AS active

-- name: stage
CREATE TEMP TABLE IF NOT EXISTS pyramid_stage_items (
    id bigint, document_id bigint, level text, ordinal integer, title text, text text, pages integer[],
    embedding vector, content_hash text, distiller text, stale boolean, meta jsonb);
CREATE TEMP TABLE IF NOT EXISTS pyramid_stage_sources (
    item_id bigint, source_item_id bigint, source_document_id bigint, source_ref text)

-- name: copy_staged
COPY pyramid_stage_items (id, document_id, level, ordinal, title, text, pages, embedding, content_hash,
                          distiller, stale, meta)
FROM STDIN (FORMAT BINARY)

-- name: copy_sources_staged
COPY pyramid_stage_sources (item_id, source_item_id, source_document_id, source_ref) FROM STDIN (FORMAT BINARY)

-- name: insert_staged
-- One INSERT of everything staged, so the BM25 triggers run once for the batch, as after a COPY.
WITH moved AS (DELETE FROM pyramid_stage_items RETURNING *)
INSERT INTO items (id, document_id, level, ordinal, title, text, pages, embedding, content_hash, distiller,
                   stale, meta)
OVERRIDING SYSTEM VALUE
SELECT id, document_id, level, ordinal, title, text, pages, embedding, content_hash, distiller, stale, meta
FROM moved ORDER BY id

-- name: insert_sources_staged
WITH moved AS (DELETE FROM pyramid_stage_sources RETURNING *)
INSERT INTO item_sources (item_id, source_item_id, source_document_id, source_ref)
SELECT item_id, source_item_id, source_document_id, source_ref FROM moved

-- name: delete_for_document
DELETE FROM items
WHERE document_id = %(document_id)s
  AND (%(levels)s::text[] IS NULL OR level = ANY(%(levels)s))

-- name: delete_for_document_except
-- Replacing a document version keeps the items that did not change (same ids, so provenance that
-- points at them, e.g. from recollections, stays intact) and deletes the rest.
DELETE FROM items
WHERE document_id = %(document_id)s
  AND NOT (id = ANY(%(keep)s))
  AND (%(levels)s::text[] IS NULL OR level = ANY(%(levels)s))

-- name: update_kept
-- Only rows that actually differ are touched, so an unchanged page costs no row version.
-- A page inserted or deleted before an unchanged page renumbers it (and what rests on it).
UPDATE items i
SET ordinal = v.ordinal, meta = v.meta, pages = string_to_array(v.pages, ',')::integer[]
FROM unnest(%(ids)s::bigint[], %(ordinals)s::integer[], %(metas)s::jsonb[], %(pages)s::text[])
     AS v(id, ordinal, meta, pages)
WHERE i.id = v.id
  AND (i.ordinal IS DISTINCT FROM v.ordinal OR i.meta IS DISTINCT FROM v.meta
       OR i.pages IS DISTINCT FROM string_to_array(v.pages, ',')::integer[])

-- name: delete_ids
DELETE FROM items WHERE id = ANY(%(ids)s)

-- name: for_document
SELECT i.id, i.level, i.ordinal, i.title, i.text, i.pages, i.distiller, i.stale,
       coalesce(array_agg(s.source_item_id ORDER BY s.source_item_id)
                FILTER (WHERE s.source_item_id IS NOT NULL), '{}') AS sources
FROM items i
LEFT JOIN item_sources s ON s.item_id = i.id
WHERE i.document_id = %(document_id)s
  AND (%(levels)s::text[] IS NULL OR i.level = ANY(%(levels)s))
GROUP BY i.id
ORDER BY i.level, i.ordinal, i.id

-- name: recollections_for_document
SELECT DISTINCT i.id, i.level, i.ordinal, i.title, i.text, i.pages, i.distiller, i.stale,
       '{}'::bigint[] AS sources
FROM items i
JOIN item_sources s ON s.item_id = i.id
LEFT JOIN items src ON src.id = s.source_item_id
WHERE i.level = 'recollection'
  AND (s.source_document_id = %(document_id)s OR src.document_id = %(document_id)s)
ORDER BY i.ordinal, i.id

-- name: page_hashes
SELECT id, ordinal, content_hash FROM items
WHERE document_id = %(document_id)s AND level = 'page'
ORDER BY ordinal
