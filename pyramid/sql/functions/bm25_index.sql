-- Writing the BM25 index: postings and delta statistics of items added or removed, called by the
-- statement-level triggers on items (migration 002) in the writer's own transaction.
-- Advisory lock {lock_impacts} guards the stored impacts: writers take it shared, a re-impacting
-- compaction exclusive (keys defined in pyramid/store/schema.py).

CREATE OR REPLACE FUNCTION pyramid_bm25_add(ids bigint[], levels text[], docs bigint[], texts text[],
                                            cols integer[]) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    cfg regconfig := pyramid_ts_config();
BEGIN
    IF coalesce(cardinality(ids), 0) = 0 THEN   -- array_agg of no rows is NULL
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared({lock_impacts});
    -- The first writer of a level of a collection fixes its reference avgdl. A concurrent first
    -- writer makes this wait for it and then do nothing; the next statement's snapshot sees
    -- whichever row won.
    IF EXISTS (SELECT 1 FROM unnest(levels, cols) l(level, col)
               WHERE NOT EXISTS (SELECT 1 FROM bm25_impact_ref r
                                 WHERE r.collection_id = l.col AND r.level = l.level)) THEN
        INSERT INTO bm25_impact_ref (collection_id, level, avgdl, ref_k1, ref_b)
        SELECT x.col, x.level, greatest(avg((SELECT coalesce(sum(cardinality(u.positions)), 0)
                                   FROM unnest(to_tsvector(cfg, x.text)) AS u(lexeme, positions, weights))), 1),
               1.2, 0.75
        FROM unnest(levels, texts, cols) AS x(level, text, col)
        GROUP BY x.col, x.level
        ON CONFLICT (collection_id, level) DO NOTHING;
    END IF;
    WITH docs AS MATERIALIZED (
        SELECT x.id, x.level, x.document_id, x.col, to_tsvector(cfg, x.text) AS tsv
        FROM unnest(ids, levels, docs, texts, cols) AS x(id, level, document_id, text, col)
    ), terms AS MATERIALIZED (
        -- tf = the positions to_tsvector kept for the lexeme (it keeps at most 256 per lexeme).
        SELECT d.id, d.level, d.document_id, d.col, u.lexeme, cardinality(u.positions) AS tf
        FROM docs d CROSS JOIN LATERAL unnest(d.tsv) AS u(lexeme, positions, weights)
    ), lengths AS MATERIALIZED (
        SELECT d.id, d.level, d.col, coalesce(sum(t.tf), 0)::integer AS dl
        FROM docs d LEFT JOIN terms t ON t.id = d.id
        GROUP BY d.id, d.level, d.col
    ), postings AS (
        INSERT INTO bm25_postings (item_id, document_id, collection_id, tf, dl, impact, lexeme, level)
        SELECT t.id, t.document_id, t.col, t.tf, l.dl,
               (t.tf / (t.tf + r.ref_k1 * (1 - r.ref_b + r.ref_b * l.dl / r.avgdl)))::real,
               t.lexeme, t.level
        FROM terms t
        JOIN lengths l ON l.id = t.id
        JOIN bm25_impact_ref r ON r.collection_id = t.col AND r.level = t.level
    ), term_deltas AS (
        INSERT INTO bm25_term_deltas (collection_id, level, lexeme, df)
        SELECT t.col, t.level, t.lexeme, count(*) FROM terms t GROUP BY t.col, t.level, t.lexeme
    )
    INSERT INTO bm25_level_deltas (collection_id, level, items, total_dl)
    SELECT l.col, l.level, count(*), sum(l.dl) FROM lengths l GROUP BY l.col, l.level;
END
$$;

CREATE OR REPLACE FUNCTION pyramid_bm25_remove(ids bigint[], levels text[], cols integer[]) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF coalesce(cardinality(ids), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared({lock_impacts});
    WITH gone AS (
        -- = ANY(array) keeps this an index scan on the primary key whatever the planner thinks of
        -- the size of a transition table.
        DELETE FROM bm25_postings p WHERE p.item_id = ANY(ids)
        RETURNING p.item_id, p.collection_id, p.level, p.lexeme, p.dl
    ), term_deltas AS (
        INSERT INTO bm25_term_deltas (collection_id, level, lexeme, df)
        SELECT g.collection_id, g.level, g.lexeme, -count(*) FROM gone g GROUP BY g.collection_id, g.level, g.lexeme
    ), lengths AS (
        SELECT DISTINCT g.item_id, g.dl FROM gone g
    )
    -- Items without a single lexeme have no postings but still count in N (with length 0).
    INSERT INTO bm25_level_deltas (collection_id, level, items, total_dl)
    SELECT x.col, x.level, -count(*), -coalesce(sum(l.dl), 0)
    FROM unnest(ids, levels, cols) AS x(id, level, col)
    LEFT JOIN lengths l ON l.item_id = x.id
    GROUP BY x.col, x.level;
END
$$;
