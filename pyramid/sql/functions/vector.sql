-- The k nearest items of one level of the given collections (NULL: every one in scope) by cosine
-- similarity. Filters run inside the index scan
-- (iterative scans go on past filtered-out rows), or, for a small filtered set, as an exact scan of
-- just those items. Custom plans let the planner match the level to its partial HNSW index.
CREATE OR REPLACE FUNCTION pyramid_vector(query_embedding vector, lvl text, k integer DEFAULT 10,
                               doc_ids bigint[] DEFAULT NULL, cols integer[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, similarity double precision)
LANGUAGE plpgsql STABLE ROWS 100
SET hnsw.iterative_scan = 'relaxed_order'
SET hnsw.ef_search = 40
SET plan_cache_mode = 'force_custom_plan'
AS $$
#variable_conflict use_column
DECLARE
    allowed bigint[];
BEGIN
    IF k < 1 OR query_embedding IS NULL THEN
        RETURN;
    END IF;
    cols := pyramid_search_collections(cols);
    IF doc_ids IS NOT NULL THEN
        allowed := ARRAY(SELECT i.id FROM items i
                         WHERE i.document_id = ANY(doc_ids) AND i.level = lvl AND i.embedding IS NOT NULL
                           AND i.collection_id = ANY(cols)
                         LIMIT pyramid_setting('exact_below', 20000)::integer + 1);
        IF cardinality(allowed) <= pyramid_setting('exact_below', 20000) THEN
            RETURN QUERY
            WITH d AS MATERIALIZED (
                SELECT i.id, i.embedding <=> query_embedding AS distance FROM items i WHERE i.id = ANY(allowed)
            )
            SELECT d.id, 1 - d.distance FROM d ORDER BY d.distance, d.id LIMIT k;
            RETURN;
        END IF;
    END IF;
    -- Restored when the function returns (SET clause above): the caller's session keeps its own.
    PERFORM set_config('hnsw.ef_search', least(greatest(k, 40), 1000)::text, true);
    RETURN QUERY
    WITH d AS MATERIALIZED (   -- relaxed order: the index may return near-ties out of order
        SELECT i.id, i.embedding <=> query_embedding AS distance FROM items i
        WHERE i.level = lvl AND i.collection_id = ANY(cols) AND (doc_ids IS NULL OR i.document_id = ANY(doc_ids))
          AND i.embedding IS NOT NULL   -- an item stored before its vector (an embed worker's backlog)
        ORDER BY i.embedding <=> query_embedding
        LIMIT k
    )
    SELECT d.id, 1 - d.distance FROM d ORDER BY d.distance, d.id;
END
$$;
