-- Named queries of hybrid search (the search itself is pyramid_search() in functions/search.sql).

-- name: run
SELECT s.rank, s.item_id, s.level, s.fused, s.bm25, s.bm25_rank, s.similarity, s.vector_rank,
       i.text, i.title, i.pages, i.stale, i.document_id, d.source, d.title
FROM pyramid_search(%(query)s, %(embedding)s::vector, %(levels)s::text[], %(k)s, %(mode)s, %(docs)s::text[],
                    %(fusion)s, %(rrf_k)s, %(weight_bm25)s, %(candidates)s, %(k1)s, %(b)s) s
JOIN items i ON i.id = s.item_id
LEFT JOIN documents d ON d.id = i.document_id
ORDER BY s.rank

-- name: compact
SELECT folded, reimpacted FROM pyramid_bm25_compact(%(k1)s, %(b)s)
