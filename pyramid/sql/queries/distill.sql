-- Named queries of the distillers: the LLM output cache, the usage ledger, recollections.

-- name: record_usage
INSERT INTO distill_usage (source, step, model, requests, input_tokens, output_tokens, cached, failed)
VALUES (%(source)s, %(step)s, %(model)s, %(requests)s, %(input_tokens)s, %(output_tokens)s, %(cached)s, %(failed)s)

-- name: cached_outputs
-- Everything cached for one document, read once when its distillation starts.
SELECT key, output FROM llm_outputs WHERE collection_id = pyramid_write_collection() AND source = %(source)s

-- name: cached_output
SELECT output FROM llm_outputs WHERE collection_id = pyramid_write_collection() AND key = %(key)s

-- name: cache_output
INSERT INTO llm_outputs (key, step, model, source, position, pages_key, output, usage)
VALUES (%(key)s, %(step)s, %(model)s, %(source)s, %(position)s, %(pages_key)s, %(output)s, %(usage)s)
ON CONFLICT (collection_id, key) DO NOTHING

-- name: forget_unused_outputs
-- After a version is stored, only the outputs it was built from stay cached (an incremental
-- re-distillation replays them; older versions' outputs would only grow the table).
DELETE FROM llm_outputs
WHERE collection_id = pyramid_write_collection() AND source = ANY(%(sources)s) AND NOT (key = ANY(%(keep)s))

-- name: sources_of
SELECT source FROM documents WHERE id = ANY(%(ids)s) ORDER BY id

-- name: all_concepts
SELECT i.id, i.document_id, i.title, i.text, i.embedding, d.title AS document_title, d.source
FROM items i
JOIN documents d ON d.id = i.document_id
WHERE i.collection_id = pyramid_write_collection() AND i.level = 'concept' AND i.embedding IS NOT NULL
ORDER BY i.id

-- name: recollections_by
SELECT i.id, i.text, i.stale,
       coalesce(array_agg(s.source_item_id ORDER BY s.source_item_id)
                FILTER (WHERE s.source_item_id IS NOT NULL), '{}') AS sources
FROM items i
LEFT JOIN item_sources s ON s.item_id = i.id
WHERE i.collection_id = pyramid_write_collection() AND i.level = 'recollection' AND i.distiller = %(distiller)s
GROUP BY i.id
ORDER BY i.ordinal, i.id

-- name: recollection_trails
-- What a recollection says and rests on, by the readable trail of each source (concept — document
-- (source)): the trail survives its concept being stored again under a new id.
SELECT i.id, i.text,
       coalesce(array_agg(s.source_ref ORDER BY s.source_ref) FILTER (WHERE s.id IS NOT NULL), '{}') AS refs
FROM items i
LEFT JOIN item_sources s ON s.item_id = i.id
WHERE i.id = ANY(%(ids)s) AND i.level = 'recollection'
GROUP BY i.id
ORDER BY i.id

-- name: unlink_recollection
DELETE FROM item_sources WHERE item_id = %(id)s

-- name: link_recollection
INSERT INTO item_sources (item_id, source_item_id, source_ref) VALUES (%(id)s, %(source)s, %(ref)s)

-- name: keep_recollection
-- The same recollection, resting on the concepts as they are stored now: fresh, not stale.
UPDATE items SET stale = false, meta = meta || jsonb_build_object('documents', %(documents)s::jsonb)
WHERE id = %(id)s

-- name: next_recollection_ordinal
SELECT coalesce(max(ordinal), 0) + 1 AS ordinal FROM items WHERE collection_id = pyramid_write_collection() AND level = 'recollection'

-- name: concepts_of_documents
SELECT i.id, i.document_id, i.title, i.text, i.embedding, d.title AS document_title, d.source
FROM items i
JOIN documents d ON d.id = i.document_id
WHERE i.level = 'concept' AND i.document_id = ANY(%(ids)s)
ORDER BY i.document_id, i.ordinal

-- name: abstracts_of_documents
SELECT document_id, text FROM items WHERE level = 'abstract' AND document_id = ANY(%(ids)s)

-- name: related_concepts
-- For each of the given concepts, in the order given, the concepts of other documents nearest to
-- it (cosine distance on the concept level's HNSW index), nearest first: one query for a batch.
SELECT c.id AS concept_id, r.id, r.document_id, r.title, r.text, r.document_title, r.source
FROM unnest(%(concepts)s::bigint[]) WITH ORDINALITY AS q(id, position)
JOIN items c ON c.id = q.id
CROSS JOIN LATERAL (
    SELECT i.id, i.document_id, i.title, i.text, d.title AS document_title, d.source,
           i.embedding <=> c.embedding AS distance
    FROM items i
    JOIN documents d ON d.id = i.document_id
    WHERE i.collection_id = c.collection_id AND i.level = 'concept' AND NOT (i.document_id = ANY(%(exclude)s))
      AND i.embedding IS NOT NULL
    ORDER BY i.embedding <=> c.embedding
    LIMIT %(limit)s
) r
ORDER BY q.position, r.distance, r.id

-- name: recollections_about
-- Model-made recollections that rest on any of these concepts, and stale ones waiting for a refresh
-- (not the user's, nor those learned from answers: `recollections verify` re-checks those).
SELECT r.id, r.text
FROM items r
WHERE r.collection_id = pyramid_write_collection() AND r.level = 'recollection' AND r.distiller NOT IN ('user', 'extractive', 'learned')
  AND (r.stale OR EXISTS (SELECT 1 FROM item_sources s
                          WHERE s.item_id = r.id AND s.source_item_id = ANY(%(concepts)s)))
ORDER BY r.stale DESC, r.ordinal, r.id
LIMIT %(limit)s

-- name: document_sources
SELECT id, source, coalesce(nullif(title, ''), source) AS title FROM documents WHERE id = ANY(%(ids)s)
