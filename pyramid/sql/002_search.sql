-- 002: hybrid search. Okapi BM25 over the database's own to_tsvector lexemes, kept by triggers on
-- items; per-level HNSW indexes for the dense leg; pyramid_search(), callable from any client.
--
-- BM25 bookkeeping (why it looks like this):
-- * bm25_postings has one row per (item, lexeme) with tf, the item's length dl and a precomputed
--   impact. Rows are written and removed by statement-level triggers on items, in the writer's own
--   transaction, so a reader sees postings and statistics of exactly the items its snapshot sees.
-- * Statistics (items and total length per level, document frequency per level and lexeme) are the
--   compacted tables plus the sum of append-only delta rows. Writers only INSERT deltas: no row is
--   updated by every writer, so concurrent ingests neither serialise on nor deadlock over a shared
--   counter. pyramid_bm25_compact() folds the deltas into the compacted tables in one transaction.
-- * impact = tf / (tf + k1 (1 - b + b dl / avgdl_ref)) with the level's reference avgdl, so the
--   postings of a lexeme can be read best-first. Scores are always computed exactly from tf and dl
--   with the current statistics; the impact only decides how far a query must read (see pyramid_bm25).

-- The text search configuration this database was built with (recorded by migration 001).
CREATE FUNCTION pyramid_ts_config() RETURNS regconfig
LANGUAGE sql STABLE
AS $$ SELECT coalesce((SELECT value #>> '{}' FROM pyramid_meta WHERE key = 'text_search_config'),
                      'english')::regconfig $$;

CREATE TABLE bm25_postings (
    item_id      bigint NOT NULL,
    document_id  bigint,                 -- copied from the item: document filters read the index only
    tf           integer NOT NULL,
    dl           integer NOT NULL,
    impact       real NOT NULL,
    lexeme       text NOT NULL,
    level        text NOT NULL,
    -- (item_id, lexeme) finds an item's postings (deletes) and scores a candidate exactly.
    PRIMARY KEY (item_id, lexeme) INCLUDE (tf, dl)
);
-- Best-first reading of one lexeme's postings within a level.
CREATE INDEX bm25_postings_impact ON bm25_postings (level, lexeme, impact DESC, item_id)
    INCLUDE (document_id, tf, dl);

CREATE TABLE bm25_levels (
    level     text PRIMARY KEY,
    items     bigint NOT NULL,
    total_dl  bigint NOT NULL
);
CREATE TABLE bm25_level_deltas (          -- append-only; folded by pyramid_bm25_compact()
    level     text NOT NULL,
    items     bigint NOT NULL,
    total_dl  bigint NOT NULL
);
CREATE INDEX bm25_level_deltas_level ON bm25_level_deltas (level);

CREATE TABLE bm25_terms (
    level   text NOT NULL,
    lexeme  text NOT NULL,
    df      bigint NOT NULL,
    PRIMARY KEY (level, lexeme)
);
CREATE TABLE bm25_term_deltas (           -- append-only; folded by pyramid_bm25_compact()
    level   text NOT NULL,
    lexeme  text NOT NULL,
    df      bigint NOT NULL
);
CREATE INDEX bm25_term_deltas_term ON bm25_term_deltas (level, lexeme);

-- The parameters the stored impacts of a level were computed with. Written once per level by its
-- first writer, rewritten only by compaction when the level's average length has drifted.
CREATE TABLE bm25_impact_ref (
    level   text PRIMARY KEY,
    avgdl   double precision NOT NULL CHECK (avgdl > 0),
    ref_k1  double precision NOT NULL,
    ref_b   double precision NOT NULL
);

-- Statistics as a reader's snapshot sees them: compacted + deltas.
CREATE VIEW bm25_level_stats AS
SELECT level, sum(items)::bigint AS items, sum(total_dl)::bigint AS total_dl,
       CASE WHEN sum(items) > 0 THEN sum(total_dl)::double precision / sum(items) ELSE 0 END AS avgdl
FROM (SELECT level, items, total_dl FROM bm25_levels
      UNION ALL
      SELECT level, items, total_dl FROM bm25_level_deltas) s
GROUP BY level;

CREATE VIEW bm25_term_stats AS
SELECT level, lexeme, sum(df)::bigint AS df
FROM (SELECT level, lexeme, df FROM bm25_terms
      UNION ALL
      SELECT level, lexeme, df FROM bm25_term_deltas) s
GROUP BY level, lexeme
HAVING sum(df) <> 0;

-- Advisory lock keys, namespaced like pyramid/db.py (0x70797261): 3 = stored impacts (writers take
-- it shared, a re-impacting compaction exclusive), 4 = one compaction at a time.

CREATE FUNCTION pyramid_bm25_add(ids bigint[], levels text[], docs bigint[], texts text[]) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    cfg regconfig := pyramid_ts_config();
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1886009953, 3);
    -- The first writer of a level fixes its reference avgdl. A concurrent first writer makes this
    -- wait for it and then do nothing; the next statement's snapshot sees whichever row won.
    IF EXISTS (SELECT 1 FROM unnest(levels) l(level)
               WHERE NOT EXISTS (SELECT 1 FROM bm25_impact_ref r WHERE r.level = l.level)) THEN
        INSERT INTO bm25_impact_ref (level, avgdl, ref_k1, ref_b)
        SELECT x.level, greatest(avg((SELECT coalesce(sum(cardinality(u.positions)), 0)
                                   FROM unnest(to_tsvector(cfg, x.text)) AS u(lexeme, positions, weights))), 1),
               1.2, 0.75
        FROM unnest(levels, texts) AS x(level, text)
        GROUP BY x.level
        ON CONFLICT (level) DO NOTHING;
    END IF;
    WITH docs AS MATERIALIZED (
        SELECT x.id, x.level, x.document_id, to_tsvector(cfg, x.text) AS tsv
        FROM unnest(ids, levels, docs, texts) AS x(id, level, document_id, text)
    ), terms AS MATERIALIZED (
        -- tf = the positions to_tsvector kept for the lexeme (it keeps at most 256 per lexeme).
        SELECT d.id, d.level, d.document_id, u.lexeme, cardinality(u.positions) AS tf
        FROM docs d CROSS JOIN LATERAL unnest(d.tsv) AS u(lexeme, positions, weights)
    ), lengths AS MATERIALIZED (
        SELECT d.id, d.level, coalesce(sum(t.tf), 0)::integer AS dl
        FROM docs d LEFT JOIN terms t ON t.id = d.id
        GROUP BY d.id, d.level
    ), postings AS (
        INSERT INTO bm25_postings (item_id, document_id, tf, dl, impact, lexeme, level)
        SELECT t.id, t.document_id, t.tf, l.dl,
               (t.tf / (t.tf + r.ref_k1 * (1 - r.ref_b + r.ref_b * l.dl / r.avgdl)))::real,
               t.lexeme, t.level
        FROM terms t
        JOIN lengths l ON l.id = t.id
        JOIN bm25_impact_ref r ON r.level = t.level
    ), term_deltas AS (
        INSERT INTO bm25_term_deltas (level, lexeme, df)
        SELECT t.level, t.lexeme, count(*) FROM terms t GROUP BY t.level, t.lexeme
    )
    INSERT INTO bm25_level_deltas (level, items, total_dl)
    SELECT l.level, count(*), sum(l.dl) FROM lengths l GROUP BY l.level;
END
$$;

CREATE FUNCTION pyramid_bm25_remove(ids bigint[], levels text[]) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1886009953, 3);
    WITH gone AS (
        -- = ANY(array) keeps this an index scan on the primary key whatever the planner thinks of
        -- the size of a transition table.
        DELETE FROM bm25_postings p WHERE p.item_id = ANY(ids)
        RETURNING p.item_id, p.level, p.lexeme, p.dl
    ), term_deltas AS (
        INSERT INTO bm25_term_deltas (level, lexeme, df)
        SELECT g.level, g.lexeme, -count(*) FROM gone g GROUP BY g.level, g.lexeme
    ), lengths AS (
        SELECT DISTINCT g.item_id, g.dl FROM gone g
    )
    -- Items without a single lexeme have no postings but still count in N (with length 0).
    INSERT INTO bm25_level_deltas (level, items, total_dl)
    SELECT x.level, -count(*), -coalesce(sum(l.dl), 0)
    FROM unnest(ids, levels) AS x(id, level)
    LEFT JOIN lengths l ON l.item_id = x.id
    GROUP BY x.level;
END
$$;

CREATE FUNCTION pyramid_items_bm25_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pyramid_bm25_add(ARRAY(SELECT n.id FROM new_items n ORDER BY n.id),
                             ARRAY(SELECT n.level FROM new_items n ORDER BY n.id),
                             ARRAY(SELECT n.document_id FROM new_items n ORDER BY n.id),
                             ARRAY(SELECT n.text FROM new_items n ORDER BY n.id));
    RETURN NULL;
END
$$;

CREATE FUNCTION pyramid_items_bm25_delete() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pyramid_bm25_remove(ARRAY(SELECT o.id FROM old_items o ORDER BY o.id),
                                ARRAY(SELECT o.level FROM old_items o ORDER BY o.id));
    RETURN NULL;
END
$$;

-- Updates that change what BM25 sees (text, level, document) re-index those items; others (a new
-- embedding, the stale flag) cost one join of the transition tables.
CREATE FUNCTION pyramid_items_bm25_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    changed bigint[];
BEGIN
    changed := ARRAY(SELECT n.id FROM new_items n JOIN old_items o ON o.id = n.id
                     WHERE (n.text, n.level, n.document_id) IS DISTINCT FROM (o.text, o.level, o.document_id)
                     ORDER BY n.id);
    IF cardinality(changed) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pyramid_bm25_remove(changed,
                                ARRAY(SELECT o.level FROM old_items o WHERE o.id = ANY(changed) ORDER BY o.id));
    PERFORM pyramid_bm25_add(changed,
                             ARRAY(SELECT n.level FROM new_items n WHERE n.id = ANY(changed) ORDER BY n.id),
                             ARRAY(SELECT n.document_id FROM new_items n WHERE n.id = ANY(changed) ORDER BY n.id),
                             ARRAY(SELECT n.text FROM new_items n WHERE n.id = ANY(changed) ORDER BY n.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER items_bm25_insert AFTER INSERT ON items
    REFERENCING NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION pyramid_items_bm25_insert();
CREATE TRIGGER items_bm25_delete AFTER DELETE ON items
    REFERENCING OLD TABLE AS old_items FOR EACH STATEMENT EXECUTE FUNCTION pyramid_items_bm25_delete();
CREATE TRIGGER items_bm25_update AFTER UPDATE ON items
    REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items
    FOR EACH STATEMENT EXECUTE FUNCTION pyramid_items_bm25_update();

-- Fold the deltas into the compacted statistics (one compaction at a time, atomically: a reader
-- sees the statistics before or after it, both exact). Then re-compute the stored impacts of any
-- level whose average length drifted more than 25% from its reference, or whose k1/b differ from
-- the ones given, so that pruning stays tight; that step is skipped (never waited for) while a
-- writer is in flight. Returns the delta rows folded and the levels re-impacted.
CREATE FUNCTION pyramid_bm25_compact(k1 double precision DEFAULT 1.2, b double precision DEFAULT 0.75,
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
    PERFORM pg_advisory_xact_lock(1886009953, 4);
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
        IF NOT pg_try_advisory_xact_lock(1886009953, 3) THEN
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

-- The query's lexemes and how often each occurs in it, from the same to_tsvector as the items: user
-- text is never parsed as tsquery syntax, so operators and quotes in it are plain characters.
CREATE FUNCTION pyramid_query_lexemes(query text)
RETURNS TABLE (lexeme text, qtf integer)
LANGUAGE sql STABLE
AS $$ SELECT u.lexeme, cardinality(u.positions) FROM unnest(to_tsvector(pyramid_ts_config(), coalesce(query, '')))
      AS u(lexeme, positions, weights) $$;

-- A glob (* ? and literal characters) as a LIKE pattern (escape character \).
CREATE FUNCTION pyramid_glob_like(glob text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT replace(replace(replace(replace(replace(glob, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_') $$;

-- Ids of the documents whose source matches one of the globs (whole path, or its tail after a /).
CREATE FUNCTION pyramid_match_documents(globs text[]) RETURNS bigint[]
LANGUAGE sql STABLE
AS $$ SELECT coalesce(array_agg(d.id ORDER BY d.id), '{}') FROM documents d
      WHERE EXISTS (SELECT 1 FROM unnest(globs) g
                    WHERE d.source LIKE pyramid_glob_like(g) ESCAPE '\'
                       OR d.source LIKE '%/' || pyramid_glob_like(g) ESCAPE '\') $$;

-- A document filter that leaves at most this many items of a level is served by scoring exactly
-- those items instead of reading the level's indexes (SET pyramid.exact_below = N to change it).
CREATE FUNCTION pyramid_exact_below() RETURNS integer
LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('pyramid.exact_below', true), '')::integer, 20000) $$;

-- One term's exact contribution: weight (= qtf · idf) · tf · (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)).
CREATE FUNCTION pyramid_bm25_term(weight double precision, tf integer, dl integer, avgdl double precision,
                                  k1 double precision, b double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)) $$;

-- A query's terms within one level, as the reader's snapshot sees the statistics: N, avgdl, and
-- the lexemes present in the level with weight = qtf · ln(1 + (N - df + 0.5) / (df + 0.5)) (the
-- non-negative idf of Lucene; a query term repeated counts as often as it is repeated).
CREATE FUNCTION pyramid_bm25_terms(query text, lvl text, OUT n bigint, OUT avgdl double precision,
                                   OUT lexemes text[], OUT weights double precision[])
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    SELECT s.items, s.avgdl INTO n, avgdl FROM bm25_level_stats s WHERE s.level = lvl;
    IF n IS NULL OR n <= 0 OR avgdl <= 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(q.lexeme ORDER BY q.lexeme),
           array_agg(q.qtf * ln(1 + (n - t.df + 0.5) / (t.df + 0.5)) ORDER BY q.lexeme)
    INTO lexemes, weights
    FROM pyramid_query_lexemes(query) q
    CROSS JOIN LATERAL (
        SELECT sum(x.df) AS df
        FROM (SELECT c.df FROM bm25_terms c WHERE c.level = lvl AND c.lexeme = q.lexeme
              UNION ALL
              SELECT d.df FROM bm25_term_deltas d WHERE d.level = lvl AND d.lexeme = q.lexeme) x
    ) t
    WHERE t.df > 0;
END
$$;

-- The top k items of one level by Okapi BM25, exact. Filters (documents) apply before the limit.
--
-- Common terms have long postings lists, so by default the lists are read best-first by stored
-- impact, m entries per term, and the candidates found are scored exactly. An item that is in none
-- of the prefixes read scores at most the bound: the sum over terms of weight · (k1+1) · the last
-- impact read, times max(1, avgdl / avgdl_ref) (an impact computed with another avgdl is off by at
-- most that factor) with a margin for the real-valued storage. When the k-th exact score beats the
-- bound the answer is the exhaustive one; otherwise m grows fourfold and the loop reads further.
-- exhaustive => true scores every posting (the reference the pruned answer is tested against).
CREATE FUNCTION pyramid_bm25(query text, lvl text, k integer DEFAULT 10, doc_ids bigint[] DEFAULT NULL,
                             k1 double precision DEFAULT 1.2, b double precision DEFAULT 0.75,
                             exhaustive boolean DEFAULT false)
RETURNS TABLE (item_id bigint, score double precision)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
DECLARE
    st record;
    ref record;
    allowed bigint[];
    m integer;
    factor double precision;
    bound double precision;
    cand bigint[];
    ids bigint[];
    scores double precision[];
BEGIN
    IF k < 1 THEN
        RETURN;
    END IF;
    st := pyramid_bm25_terms(query, lvl);
    IF st.lexemes IS NULL THEN
        RETURN;
    END IF;
    IF doc_ids IS NOT NULL THEN
        allowed := ARRAY(SELECT i.id FROM items i WHERE i.document_id = ANY(doc_ids) AND i.level = lvl
                         LIMIT pyramid_exact_below() + 1);
    END IF;
    SELECT r.avgdl, r.ref_k1, r.ref_b INTO ref FROM bm25_impact_ref r WHERE r.level = lvl;
    IF cardinality(allowed) <= pyramid_exact_below() THEN
        -- A small filtered set: score all of its postings of the query's lexemes (primary key).
        RETURN QUERY
        SELECT p.item_id, sum(pyramid_bm25_term(w.weight, p.tf, p.dl, st.avgdl, k1, b)) AS s
        FROM bm25_postings p JOIN unnest(st.lexemes, st.weights) AS w(lexeme, weight) ON w.lexeme = p.lexeme
        WHERE p.item_id = ANY(allowed) AND p.lexeme = ANY(st.lexemes)
        GROUP BY p.item_id ORDER BY s DESC, p.item_id LIMIT k;
        RETURN;
    END IF;
    IF exhaustive OR ref.avgdl IS NULL OR ref.ref_k1 <> k1 OR ref.ref_b <> b THEN
        -- Stored impacts bound only the k1 and b they were computed with; otherwise score everything.
        RETURN QUERY
        SELECT p.item_id, sum(pyramid_bm25_term(w.weight, p.tf, p.dl, st.avgdl, k1, b)) AS s
        FROM unnest(st.lexemes, st.weights) AS w(lexeme, weight)
        JOIN bm25_postings p ON p.level = lvl AND p.lexeme = w.lexeme
        WHERE doc_ids IS NULL OR p.document_id = ANY(doc_ids)
        GROUP BY p.item_id ORDER BY s DESC, p.item_id LIMIT k;
        RETURN;
    END IF;
    factor := greatest(1, st.avgdl / ref.avgdl) * (k1 + 1) * (1 + 1e-6);
    m := greatest(k, 32);
    LOOP
        WITH lists AS MATERIALIZED (
            SELECT t.ord, c.item_id, c.impact
            FROM unnest(st.lexemes) WITH ORDINALITY AS t(lexeme, ord)
            CROSS JOIN LATERAL (
                SELECT p.item_id, p.impact FROM bm25_postings p
                WHERE p.level = lvl AND p.lexeme = t.lexeme
                  AND (doc_ids IS NULL OR p.document_id = ANY(doc_ids))
                ORDER BY p.impact DESC, p.item_id
                LIMIT m
            ) c
        ), cuts AS (
            SELECT l.ord, CASE WHEN count(*) >= m THEN min(l.impact) ELSE 0 END AS cut
            FROM lists l GROUP BY l.ord
        )
        SELECT ARRAY(SELECT DISTINCT l.item_id FROM lists l),
               (SELECT coalesce(sum(st.weights[c.ord] * c.cut), 0) FROM cuts c) * factor
        INTO cand, bound;
        SELECT array_agg(s.item_id ORDER BY s.score DESC, s.item_id),
               array_agg(s.score ORDER BY s.score DESC, s.item_id)
        INTO ids, scores
        FROM (SELECT p.item_id, sum(pyramid_bm25_term(w.weight, p.tf, p.dl, st.avgdl, k1, b)) AS score
              FROM bm25_postings p
              JOIN unnest(st.lexemes, st.weights) AS w(lexeme, weight) ON w.lexeme = p.lexeme
              WHERE p.item_id = ANY(cand) AND p.lexeme = ANY(st.lexemes)
              GROUP BY p.item_id
              ORDER BY score DESC, p.item_id
              LIMIT k) s;
        IF bound = 0 OR (cardinality(ids) >= k AND scores[k] > bound) THEN
            RETURN QUERY SELECT x.item_id, x.score FROM unnest(ids, scores) AS x(item_id, score);
            RETURN;
        END IF;
        m := m * 4;
    END LOOP;
END
$$;

-- The k nearest items of one level by cosine similarity. Filters run inside the index scan
-- (iterative scans go on past filtered-out rows), or, for a small filtered set, as an exact scan of
-- just those items. Custom plans let the planner match the level to its partial HNSW index.
CREATE FUNCTION pyramid_vector(query_embedding vector, lvl text, k integer DEFAULT 10,
                               doc_ids bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, similarity double precision)
LANGUAGE plpgsql STABLE
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
    IF doc_ids IS NOT NULL THEN
        allowed := ARRAY(SELECT i.id FROM items i
                         WHERE i.document_id = ANY(doc_ids) AND i.level = lvl AND i.embedding IS NOT NULL
                         LIMIT pyramid_exact_below() + 1);
        IF cardinality(allowed) <= pyramid_exact_below() THEN
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
        WHERE i.level = lvl AND (doc_ids IS NULL OR i.document_id = ANY(doc_ids))
        ORDER BY i.embedding <=> query_embedding
        LIMIT k
    )
    SELECT d.id, 1 - d.distance FROM d ORDER BY d.distance, d.id;
END
$$;

-- Hybrid search over the pyramid: each level is searched on its own (BM25 statistics of different
-- levels are not comparable), its BM25 and vector lists fused (reciprocal rank fusion, or a convex
-- combination of scores normalised within the level), and the levels merged by fused score. A
-- vector-only search orders by cosine similarity across levels; a BM25-only search fuses its one
-- leg per level the same way (BM25 of different levels is not comparable).
--   SELECT * FROM pyramid_search('who founded the company');                        -- BM25
--   SELECT * FROM pyramid_search('who founded the company',
--                                (SELECT embedding FROM items WHERE id = 42));      -- hybrid
-- Without query_embedding a hybrid search is a BM25 search. docs are globs over document sources
-- ('*.pdf', 'reports/*'); a glob without a slash also matches the file name.
CREATE FUNCTION pyramid_search(
    query text,
    query_embedding vector DEFAULT NULL,
    levels text[] DEFAULT NULL,
    k integer DEFAULT 10,
    mode text DEFAULT 'hybrid',
    docs text[] DEFAULT NULL,
    fusion text DEFAULT 'rrf',
    rrf_k integer DEFAULT 60,
    weight_bm25 double precision DEFAULT 0.5,
    candidates integer DEFAULT 100,
    k1 double precision DEFAULT 1.2,
    b double precision DEFAULT 0.75
)
RETURNS TABLE (rank integer, item_id bigint, level text, document_id bigint, fused double precision,
               bm25 double precision, bm25_rank integer, similarity double precision, vector_rank integer)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
DECLARE
    known constant text[] := ARRAY['page', 'insight', 'concept', 'abstract', 'recollection'];
    lvls text[];
    doc_ids bigint[];
    use_bm25 boolean := mode IN ('hybrid', 'bm25');
    use_vector boolean := mode IN ('hybrid', 'vector') AND query_embedding IS NOT NULL;
    wb double precision;
    per_leg integer := greatest(candidates, k);
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
    IF levels IS NULL THEN
        lvls := ARRAY(SELECT s.level FROM bm25_level_stats s WHERE s.items > 0
                      ORDER BY array_position(known, s.level));
    ELSE
        IF EXISTS (SELECT 1 FROM unnest(levels) l(name) WHERE l.name IS NULL OR NOT l.name = ANY(known)) THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('unknown level in %L (levels: %s)', levels, array_to_string(known, ', '));
        END IF;
        lvls := ARRAY(SELECT DISTINCT l.name FROM unnest(levels) l(name));
    END IF;
    IF docs IS NOT NULL THEN
        doc_ids := pyramid_match_documents(docs);
    END IF;
    wb := CASE WHEN NOT use_vector THEN 1 WHEN NOT use_bm25 THEN 0 ELSE weight_bm25 END;
    RETURN QUERY
    WITH lv AS (
        SELECT unnest(lvls) AS name
    ), bl AS (
        SELECT lv.name, x.item_id, x.score,
               row_number() OVER (PARTITION BY lv.name ORDER BY x.score DESC, x.item_id) AS r
        FROM lv CROSS JOIN LATERAL pyramid_bm25(query, lv.name, per_leg, doc_ids, k1, b) x
        WHERE use_bm25
    ), vl AS (
        SELECT lv.name, x.item_id, x.similarity,
               row_number() OVER (PARTITION BY lv.name ORDER BY x.similarity DESC, x.item_id) AS r
        FROM lv CROSS JOIN LATERAL pyramid_vector(query_embedding, lv.name, per_leg, doc_ids) x
        WHERE use_vector
    ), joined AS (
        SELECT coalesce(bl.name, vl.name) AS name, coalesce(bl.item_id, vl.item_id) AS item_id,
               bl.score, bl.r AS br, vl.similarity, vl.r AS vr
        FROM bl FULL JOIN vl ON vl.item_id = bl.item_id
    ), normed AS (
        SELECT j.*, max(j.score) OVER w AS bmax, min(j.similarity) OVER w AS vmin,
               max(j.similarity) OVER w AS vmax
        FROM joined j WINDOW w AS (PARTITION BY j.name)
    ), scored AS (
        SELECT n.*,
               CASE WHEN NOT use_bm25 THEN n.similarity   -- cosine is comparable across levels as it is
                    WHEN fusion = 'rrf' THEN
                        coalesce(1.0 / (rrf_k + n.br), 0) + coalesce(1.0 / (rrf_k + n.vr), 0)
                    ELSE wb * coalesce(n.score / nullif(n.bmax, 0), 0)
                         + (1 - wb) * CASE WHEN n.similarity IS NULL THEN 0
                                           WHEN n.vmax > n.vmin THEN (n.similarity - n.vmin) / (n.vmax - n.vmin)
                                           ELSE 1 END
               END::double precision AS f
        FROM normed n
    )
    SELECT (row_number() OVER (ORDER BY f.f DESC, f.similarity DESC NULLS LAST, f.item_id))::integer,
           f.item_id, f.name, i.document_id, f.f, f.score, f.br::integer, f.similarity, f.vr::integer
    FROM scored f JOIN items i ON i.id = f.item_id
    -- Equal fused scores (the first of each level under RRF) are ordered by similarity.
    ORDER BY f.f DESC, f.similarity DESC NULLS LAST, f.item_id
    LIMIT k;
END
$$;

-- Dense leg: one HNSW index per level instead of one over all levels, so a level's nearest
-- neighbours come from its own graph rather than from an iterative scan that skips other levels.
DROP INDEX items_embedding;
CREATE INDEX items_embedding_page ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'page';
CREATE INDEX items_embedding_insight ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'insight';
CREATE INDEX items_embedding_concept ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'concept';
CREATE INDEX items_embedding_abstract ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'abstract';
CREATE INDEX items_embedding_recollection ON items USING hnsw (embedding vector_cosine_ops)
    WHERE level = 'recollection';

-- Items stored before this migration get their postings now.
SELECT pyramid_bm25_add(coalesce(array_agg(i.id ORDER BY i.id), '{}'),
                        coalesce(array_agg(i.level ORDER BY i.id), '{}'),
                        coalesce(array_agg(i.document_id ORDER BY i.id), '{}'),
                        coalesce(array_agg(i.text ORDER BY i.id), '{}'))
FROM items i;
SELECT pyramid_bm25_compact();
