-- Named queries of `pyramid stats`.

-- name: items_per_level
SELECT level, count(*), count(*) FILTER (WHERE stale) FROM items GROUP BY level

-- name: items_per_distiller
SELECT level, coalesce(distiller, ''), count(*) FROM items WHERE level <> 'page' GROUP BY level, distiller
ORDER BY level, distiller

-- name: documents_per_status
SELECT status, count(*) FROM documents GROUP BY status

-- name: usage_per_step
SELECT step, model, sum(requests), sum(input_tokens), sum(output_tokens), sum(cached)
FROM distill_usage
GROUP BY step, model
ORDER BY step, model

-- name: usage_per_document
-- Per document (by source, so the tokens spent on a document that is gone still show) and step.
SELECT u.source, d.id, coalesce(d.title, ''), u.step, sum(u.requests), sum(u.input_tokens),
       sum(u.output_tokens), sum(u.cached), bool_or(u.failed)
FROM distill_usage u
LEFT JOIN documents d ON d.source = u.source
WHERE u.source IS NOT NULL
GROUP BY u.source, d.id, d.title, u.step
ORDER BY u.source, u.step
