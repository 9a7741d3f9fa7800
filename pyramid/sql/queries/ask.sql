-- Named queries of `ask`, the agent tools and the MCP server: items as evidence, and the walk from
-- one item to its neighbours in the pyramid. Every row that describes an item has the same columns:
-- id, level, text, title, pages, stale, document_id, source, path, document_title (read by name).

-- name: items
SELECT i.id, i.level, i.text, i.title, i.pages, i.stale, i.document_id, d.source, d.path, d.title AS document_title
FROM items i
LEFT JOIN documents d ON d.id = i.document_id
WHERE i.id = ANY(%(ids)s) AND pyramid_in_scope(i.collection_id)

-- name: expand
-- One item and its neighbours in one read. 'item': the item itself, with the whole documents it was
-- built from (a recollection's) in source_documents, whose source_ref keeps the name of one that is
-- gone; 'source': what the item was built from (an insight's pages, a concept's insights, an
-- abstract's concepts, a recollection's items); 'derived': what was built from it (a page's insights,
-- an insight's concepts, recollections); 'abstract': its document's abstract. At most per_kind rows
-- of each relation and level, in document order. No row at all: there is no such item.
-- Only an item in scope is expanded; what it links to is of its own collection (the foreign keys).
WITH it AS (SELECT id, document_id FROM items WHERE id = %(id)s AND pyramid_in_scope(collection_id)),
linked AS (
    SELECT 'item' AS relation, it.id AS item_id FROM it
    UNION
    SELECT 'source', s.source_item_id FROM item_sources s, it
    WHERE s.item_id = it.id AND s.source_item_id IS NOT NULL
    UNION
    SELECT 'derived', s.item_id FROM item_sources s, it
    WHERE s.source_item_id = it.id
    UNION
    SELECT 'abstract', a.id FROM items a, it
    WHERE a.document_id = it.document_id AND a.level = 'abstract' AND a.id <> it.id
),
ranked AS (
    SELECT l.relation, i.*, row_number() OVER (PARTITION BY l.relation, i.level ORDER BY i.ordinal, i.id) AS n
    FROM linked l JOIN items i ON i.id = l.item_id
)
SELECT r.relation, r.id, r.level, r.text, r.title, r.pages, r.stale, r.document_id, d.source, d.path,
       d.title AS document_title,
       CASE WHEN r.relation = 'item' THEN (
           SELECT coalesce(jsonb_agg(jsonb_build_object(
                      'id', s.source_document_id, 'source', sd.source, 'path', sd.path,
                      'title', sd.title, 'source_ref', s.source_ref) ORDER BY s.id), '[]'::jsonb)
           FROM item_sources s
           LEFT JOIN documents sd ON sd.id = s.source_document_id
           WHERE s.item_id = r.id AND s.source_item_id IS NULL)
       END AS source_documents
FROM ranked r
LEFT JOIN documents d ON d.id = r.document_id
WHERE r.n <= %(per_kind)s
ORDER BY r.relation, r.level, r.ordinal, r.id

-- name: similarity
SELECT id, 1 - (embedding <=> %(embedding)s::vector) AS similarity FROM items
WHERE id = ANY(%(ids)s) AND pyramid_in_scope(collection_id)
