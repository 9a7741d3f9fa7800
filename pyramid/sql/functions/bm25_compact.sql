-- Compaction of the BM25 statistics, per collection; advisory lock ({lock_compact_ns}, collection)
-- lets one run at a time for a collection (compactions of different collections never wait on
-- each other).

-- Fold the deltas of the given collections (NULL: every one the caller may write; the owner: all)
-- into the compacted statistics, atomically: a reader sees the statistics before or after it, both
-- exact. Then re-compute the stored impacts of any (collection, level) whose average length drifted
-- more than 25% from its reference, or whose k1/b differ from the ones given, so that pruning stays
-- tight; that step is skipped (never waited for) while a writer is in flight. Returns the delta rows
-- folded and the levels re-impacted.
CREATE OR REPLACE FUNCTION pyramid_bm25_compact(k1 double precision DEFAULT 1.2, b double precision DEFAULT 0.75,
                                                collections integer[] DEFAULT NULL,
                                                OUT folded bigint, OUT reimpacted text[])
LANGUAGE plpgsql
AS $$
DECLARE
    n1 bigint;
    n2 bigint;
    cols integer[];
    lvl record;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- Folding reads the compacted rows it rewrites; an older snapshot would lose a compaction.
        RAISE EXCEPTION 'pyramid_bm25_compact() must run at READ COMMITTED isolation';
    END IF;
    cols := ARRAY(SELECT c.id FROM collections c WHERE pyramid_bm25_compact.collections IS NULL
                     OR c.id = ANY(pyramid_bm25_compact.collections) ORDER BY c.id);
    -- Ascending order: two compactions of overlapping sets cannot deadlock.
    PERFORM pg_advisory_xact_lock({lock_compact_ns}, c) FROM unnest(cols) c;
    WITH moved AS (
        DELETE FROM bm25_level_deltas WHERE collection_id = ANY(cols) RETURNING collection_id, level, items, total_dl
    ), sums AS (
        SELECT m.collection_id, m.level, sum(m.items) AS items, sum(m.total_dl) AS total_dl
        FROM moved m GROUP BY m.collection_id, m.level
    ), counted AS (SELECT count(*) AS n FROM moved), upserted AS (
        INSERT INTO bm25_levels AS l (collection_id, level, items, total_dl)
        SELECT s.collection_id, s.level, s.items, s.total_dl FROM sums s
        ON CONFLICT (collection_id, level)
        DO UPDATE SET items = l.items + excluded.items, total_dl = l.total_dl + excluded.total_dl
    )
    SELECT n INTO n1 FROM counted;
    WITH moved AS (
        DELETE FROM bm25_term_deltas WHERE collection_id = ANY(cols) RETURNING collection_id, level, lexeme, df
    ), sums AS (
        SELECT m.collection_id, m.level, m.lexeme, sum(m.df) + coalesce(max(t.df), 0) AS df, count(*) AS rows
        FROM moved m
        LEFT JOIN bm25_terms t ON t.collection_id = m.collection_id AND t.level = m.level AND t.lexeme = m.lexeme
        GROUP BY m.collection_id, m.level, m.lexeme
    ), dropped AS (
        DELETE FROM bm25_terms t USING sums s
        WHERE t.collection_id = s.collection_id AND t.level = s.level AND t.lexeme = s.lexeme AND s.df = 0
    ), upserted AS (
        INSERT INTO bm25_terms AS t (collection_id, level, lexeme, df)
        SELECT s.collection_id, s.level, s.lexeme, s.df FROM sums s WHERE s.df <> 0
        ON CONFLICT (collection_id, level, lexeme) DO UPDATE SET df = excluded.df
    )
    SELECT coalesce(sum(s.rows), 0) INTO n2 FROM sums s;
    DELETE FROM bm25_levels WHERE collection_id = ANY(cols) AND items = 0;
    folded := n1 + n2;
    reimpacted := '{}';
    FOR lvl IN
        SELECT s.collection_id, s.level, s.total_dl::double precision / s.items AS avgdl
        FROM bm25_levels s JOIN bm25_impact_ref r ON r.collection_id = s.collection_id AND r.level = s.level
        WHERE s.collection_id = ANY(cols) AND s.items > 0 AND s.total_dl > 0
          AND (abs(s.total_dl::double precision / s.items / r.avgdl - 1) > 0.25
               OR r.ref_k1 <> pyramid_bm25_compact.k1 OR r.ref_b <> pyramid_bm25_compact.b)
        ORDER BY s.collection_id, s.level
    LOOP
        IF NOT pg_try_advisory_xact_lock({lock_impacts}) THEN
            EXIT;
        END IF;
        UPDATE bm25_impact_ref SET avgdl = lvl.avgdl, ref_k1 = pyramid_bm25_compact.k1,
                                   ref_b = pyramid_bm25_compact.b
        WHERE collection_id = lvl.collection_id AND level = lvl.level;
        UPDATE bm25_postings p
        SET impact = (p.tf / (p.tf + pyramid_bm25_compact.k1
                      * (1 - pyramid_bm25_compact.b + pyramid_bm25_compact.b * p.dl / lvl.avgdl)))::real
        WHERE p.collection_id = lvl.collection_id AND p.level = lvl.level;
        reimpacted := reimpacted || lvl.level::text;
    END LOOP;
END
$$;
