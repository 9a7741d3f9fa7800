-- Hybrid search over the pyramid: each level is searched on its own (BM25 statistics of different
-- levels are not comparable), its BM25 and vector lists fused (reciprocal rank fusion, or a convex
-- combination of scores normalised within the level), and the levels merged by fused score. A
-- vector-only search orders by cosine similarity across levels; a BM25-only search fuses its one
-- leg per level the same way (BM25 of different levels is not comparable).
--   SELECT * FROM pyramid_search('who founded the company');                        -- BM25
--   SELECT * FROM pyramid_search('who founded the company',
--                                (SELECT embedding FROM items WHERE id = 42));      -- hybrid
-- Without query_embedding a hybrid search is a BM25 search. docs are globs over document sources
-- ('*.pdf', 'reports/*'); a glob without a slash also matches the file name. A retired learned
-- recollection (kept for its audit trail) is never a hit. collections are names (NULL: every
-- collection in the session's scope; a role under row-level security sees only its own anyway); a
-- name that is not a collection the caller can read is an error, the same for one that does not
-- exist, so the error reveals nothing.
CREATE OR REPLACE FUNCTION pyramid_search(
    query text,
    query_embedding vector DEFAULT NULL,
    levels text[] DEFAULT NULL,
    k integer DEFAULT 10,
    mode text DEFAULT 'hybrid',
    docs text[] DEFAULT NULL,
    fusion text DEFAULT 'weighted',
    rrf_k integer DEFAULT 60,
    weight_bm25 double precision DEFAULT 0.5,
    candidates integer DEFAULT 100,
    k1 double precision DEFAULT 1.2,
    b double precision DEFAULT 0.75,
    collections text[] DEFAULT NULL
)
RETURNS TABLE (rank integer, item_id bigint, level text, document_id bigint, fused double precision,
               bm25 double precision, bm25_rank integer, similarity double precision, vector_rank integer)
-- ROWS 10: callers join the result to items and documents; the estimate keeps those index lookups.
LANGUAGE plpgsql STABLE ROWS 10
AS $$
#variable_conflict use_column
DECLARE
    known constant text[] := {levels};
    lvls text[];
    doc_ids bigint[];
    use_bm25 boolean := mode IN ('hybrid', 'bm25');
    use_vector boolean := mode IN ('hybrid', 'vector') AND query_embedding IS NOT NULL;
    wb double precision;   -- the BM25 leg's weight in a weighted fusion
    wr double precision;   -- and in reciprocal rank fusion
    per_leg integer := greatest(candidates, k);
    cols integer[];
BEGIN
    IF mode IS NULL OR mode NOT IN ('hybrid', 'bm25', 'vector') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unknown search mode %L (hybrid, bm25 or vector)', mode);
    END IF;
    IF fusion IS NULL OR fusion NOT IN ('rrf', 'weighted') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('unknown fusion %L (rrf or weighted)', fusion);
    END IF;
    IF mode = 'vector' AND query_embedding IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'a vector search needs query_embedding';
    END IF;
    IF k IS NULL OR k < 1 OR candidates IS NULL OR candidates < 1 OR rrf_k IS NULL OR rrf_k < 1
       OR weight_bm25 IS NULL OR weight_bm25 NOT BETWEEN 0 AND 1 OR k1 IS NULL OR k1 < 0
       OR b IS NULL OR b NOT BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'k, candidates and rrf_k must be >= 1, weight_bm25 and b within [0, 1], k1 >= 0';
    END IF;
    cols := pyramid_search_collections(NULL);
    IF collections IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM unnest(collections) n(name)
                   WHERE NOT EXISTS (SELECT 1 FROM collections c WHERE c.name = n.name AND c.id = ANY(cols))) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('no collection you can read among %L', collections);
        END IF;
        cols := ARRAY(SELECT c.id FROM collections c WHERE c.name = ANY(collections) AND c.id = ANY(cols) ORDER BY c.id);
    END IF;
    IF levels IS NULL THEN
        lvls := ARRAY(SELECT s.level FROM bm25_level_stats s WHERE s.collection_id = ANY(cols)
                      GROUP BY s.level HAVING sum(s.items) > 0
                      ORDER BY array_position(known, s.level));
    ELSE
        IF EXISTS (SELECT 1 FROM unnest(levels) l(name) WHERE l.name IS NULL OR NOT l.name = ANY(known)) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('unknown level in %L (levels: %s)', levels, array_to_string(known, ', '));
        END IF;
        lvls := ARRAY(SELECT DISTINCT l.name FROM unnest(levels) l(name));
    END IF;
    IF docs IS NOT NULL THEN
        doc_ids := pyramid_match_documents(docs, cols);
    END IF;
    wb := CASE WHEN NOT use_vector THEN 1 WHEN NOT use_bm25 THEN 0 ELSE weight_bm25 END;
    wr := CASE WHEN use_bm25 AND use_vector THEN weight_bm25 ELSE 0.5 END;
    RETURN QUERY
    WITH lv AS (
        SELECT unnest(lvls) AS name
    ), bl AS (
        SELECT lv.name, x.item_id, x.score,
               row_number() OVER (PARTITION BY lv.name ORDER BY x.score DESC, x.item_id) AS r
        FROM lv CROSS JOIN LATERAL pyramid_bm25(query, lv.name, per_leg, doc_ids, k1, b, false, cols) x
        WHERE use_bm25 AND NOT (lv.name = 'recollection' AND pyramid_retired(x.item_id))
    ), vl AS (
        SELECT lv.name, x.item_id, x.similarity,
               row_number() OVER (PARTITION BY lv.name ORDER BY x.similarity DESC, x.item_id) AS r
        FROM lv CROSS JOIN LATERAL pyramid_vector(query_embedding, lv.name, per_leg, doc_ids, cols) x
        WHERE use_vector AND NOT (lv.name = 'recollection' AND pyramid_retired(x.item_id))
    ), joined AS (
        SELECT coalesce(bl.name, vl.name) AS name, coalesce(bl.item_id, vl.item_id) AS item_id,
               bl.score, bl.r AS br, vl.similarity, vl.r AS vr
        FROM bl FULL JOIN vl ON vl.item_id = bl.item_id
    ), normed AS (
        SELECT j.*, max(j.score) OVER w AS bmax, min(j.score) OVER w AS bmin, min(j.similarity) OVER w AS vmin,
               max(j.similarity) OVER w AS vmax
        FROM joined j WINDOW w AS (PARTITION BY j.name)
    ), scored AS (
        SELECT n.*,
               CASE WHEN NOT use_bm25 THEN n.similarity   -- cosine is comparable across levels as it is
                    -- 2 · (w / (rrf_k + rank) + (1 - w) / (rrf_k + rank)): plain RRF at w = 0.5, and
                    -- 1 / (rrf_k + rank) for a BM25-only search.
                    WHEN fusion = 'rrf' THEN
                        2 * (wr * coalesce(1.0 / (rrf_k + n.br), 0) + (1 - wr) * coalesce(1.0 / (rrf_k + n.vr), 0))
                    -- Scores over their theoretical minimum (BM25 0, cosine -1) and the level's
                    -- best (Bruch et al.'s TM2C2): a leg whose scores are all alike adds little
                    -- rather than being stretched to [0, 1]. A candidate the other leg did not
                    -- return gets that leg's lowest candidate value.
                    ELSE wb * coalesce(coalesce(n.score, n.bmin) / nullif(n.bmax, 0), 0)
                         + (1 - wb) * coalesce((coalesce(n.similarity, n.vmin) + 1) / nullif(n.vmax + 1, 0), 0)
               END::double precision AS f
        FROM normed n
    )
    SELECT (row_number() OVER (ORDER BY f.f DESC, f.similarity DESC NULLS LAST, f.item_id))::integer,
           f.item_id, f.name,
           -- A subquery, not a join: a join estimated from 1000s of candidate rows may be planned as
           -- a scan of all of items.
           (SELECT i.document_id FROM items i WHERE i.id = f.item_id),
           f.f, f.score, f.br::integer, f.similarity, f.vr::integer
    FROM scored f
    -- Equal fused scores (the first of each level under RRF) are ordered by similarity.
    ORDER BY f.f DESC, f.similarity DESC NULLS LAST, f.item_id
    LIMIT k;
END
$$;
