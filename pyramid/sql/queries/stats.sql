-- Named queries of `pyramid stats` (read by column name: keep the aliases).

-- name: items_per_level
SELECT level, count(*) AS count, count(*) FILTER (WHERE stale) AS stale FROM items
WHERE pyramid_in_scope(collection_id)
GROUP BY level

-- name: items_per_distiller
SELECT level, coalesce(distiller, '') AS distiller, count(*) AS count FROM items
WHERE level <> 'page' AND pyramid_in_scope(collection_id)
GROUP BY level, distiller
ORDER BY level, distiller

-- name: documents_per_status
SELECT status, count(*) AS count FROM documents WHERE pyramid_in_scope(collection_id) GROUP BY status

-- name: usage_per_step
SELECT step, model, sum(requests) AS requests, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(cached) AS cached
FROM distill_usage
WHERE pyramid_in_scope(collection_id)
GROUP BY step, model
ORDER BY step, model

-- name: usage_per_document
-- Per document (by source, so the tokens spent on a document that is gone still show) and step.
SELECT u.source, d.id AS document_id, coalesce(d.title, '') AS title, u.step, sum(u.requests) AS requests,
       sum(u.input_tokens) AS input_tokens, sum(u.output_tokens) AS output_tokens, sum(u.cached) AS cached,
       bool_or(u.failed) AS failed
FROM distill_usage u
LEFT JOIN documents d ON d.collection_id = u.collection_id AND d.source = u.source
WHERE u.source IS NOT NULL AND pyramid_in_scope(u.collection_id)
GROUP BY u.source, d.id, d.title, u.step
ORDER BY u.source, u.step
