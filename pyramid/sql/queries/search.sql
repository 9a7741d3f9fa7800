-- Named queries of hybrid search (the search itself is pyramid_search() in functions/search.sql).

-- name: run
-- Named arguments: the call keeps meaning the same when pyramid_search gains a parameter.
SELECT s.rank, s.item_id AS id, s.level, s.fused, s.bm25, s.bm25_rank, s.similarity, s.vector_rank,
       i.text, i.title, i.pages, i.stale, i.document_id, d.source, d.path, d.title AS document_title
FROM pyramid_search(
    query => %(query)s, query_embedding => %(embedding)s::vector, levels => %(levels)s::text[],
    k => %(k)s, mode => %(mode)s, docs => %(docs)s::text[], fusion => %(fusion)s, rrf_k => %(rrf_k)s,
    weight_bm25 => %(weight_bm25)s, candidates => %(candidates)s, k1 => %(k1)s, b => %(b)s) s
JOIN items i ON i.id = s.item_id
LEFT JOIN documents d ON d.id = i.document_id
ORDER BY s.rank

-- name: compact
SELECT folded, reimpacted FROM pyramid_bm25_compact(%(k1)s, %(b)s)
