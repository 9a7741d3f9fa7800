-- Compaction of the BM25 statistics; advisory lock {lock_compact} lets one run at a time.

-- Fold the deltas into the compacted statistics (one compaction at a time, atomically: a reader
-- sees the statistics before or after it, both exact). Then re-compute the stored impacts of any
-- level whose average length drifted more than 25% from its reference, or whose k1/b differ from
-- the ones given, so that pruning stays tight; that step is skipped (never waited for) while a
-- writer is in flight. Returns the delta rows folded and the levels re-impacted.
CREATE OR REPLACE FUNCTION pyramid_bm25_compact(k1 double precision DEFAULT 1.2, b double precision DEFAULT 0.75,
                                     OUT folded bigint, OUT reimpacted text[])
LANGUAGE plpgsql
AS $$
DECLARE
    n1 bigint;
    n2 bigint;
    lvl record;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- Folding reads the compacted rows it rewrites; an older snapshot would lose a compaction.
        RAISE EXCEPTION 'pyramid_bm25_compact() must run at READ COMMITTED isolation';
    END IF;
    PERFORM pg_advisory_xact_lock({lock_compact});
    WITH moved AS (
        DELETE FROM bm25_level_deltas RETURNING level, items, total_dl
    ), sums AS (
        SELECT m.level, sum(m.items) AS items, sum(m.total_dl) AS total_dl FROM moved m GROUP BY m.level
    ), counted AS (SELECT count(*) AS n FROM moved), upserted AS (
        INSERT INTO bm25_levels AS l (level, items, total_dl)
        SELECT s.level, s.items, s.total_dl FROM sums s
        ON CONFLICT (level) DO UPDATE SET items = l.items + excluded.items, total_dl = l.total_dl + excluded.total_dl
    )
    SELECT n INTO n1 FROM counted;
    WITH moved AS (
        DELETE FROM bm25_term_deltas RETURNING level, lexeme, df
    ), sums AS (
        SELECT m.level, m.lexeme, sum(m.df) + coalesce(max(t.df), 0) AS df, count(*) AS rows
        FROM moved m LEFT JOIN bm25_terms t ON t.level = m.level AND t.lexeme = m.lexeme
        GROUP BY m.level, m.lexeme
    ), dropped AS (
        DELETE FROM bm25_terms t USING sums s WHERE t.level = s.level AND t.lexeme = s.lexeme AND s.df = 0
    ), upserted AS (
        INSERT INTO bm25_terms AS t (level, lexeme, df)
        SELECT s.level, s.lexeme, s.df FROM sums s WHERE s.df <> 0
        ON CONFLICT (level, lexeme) DO UPDATE SET df = excluded.df
    )
    SELECT coalesce(sum(s.rows), 0) INTO n2 FROM sums s;
    DELETE FROM bm25_levels WHERE items = 0;
    folded := n1 + n2;
    reimpacted := '{}';
    FOR lvl IN
        SELECT s.level, s.total_dl::double precision / s.items AS avgdl
        FROM bm25_levels s JOIN bm25_impact_ref r ON r.level = s.level
        WHERE s.items > 0 AND s.total_dl > 0
          AND (abs(s.total_dl::double precision / s.items / r.avgdl - 1) > 0.25
               OR r.ref_k1 <> pyramid_bm25_compact.k1 OR r.ref_b <> pyramid_bm25_compact.b)
    LOOP
        IF NOT pg_try_advisory_xact_lock({lock_impacts}) THEN
            EXIT;
        END IF;
        UPDATE bm25_impact_ref SET avgdl = lvl.avgdl, ref_k1 = pyramid_bm25_compact.k1,
                                   ref_b = pyramid_bm25_compact.b
        WHERE level = lvl.level;
        UPDATE bm25_postings p
        SET impact = (p.tf / (p.tf + pyramid_bm25_compact.k1
                      * (1 - pyramid_bm25_compact.b + pyramid_bm25_compact.b * p.dl / lvl.avgdl)))::real
        WHERE p.level = lvl.level;
        reimpacted := reimpacted || lvl.level::text;
    END LOOP;
END
$$;
