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
-- Functions are CREATE OR REPLACE so that a later migration (or benchmarks/latency.py on a database
-- built earlier) can redefine them in place.

-- The text search configuration this database was built with (recorded by migration 001).
CREATE OR REPLACE FUNCTION pyramid_ts_config() RETURNS regconfig
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

CREATE OR REPLACE FUNCTION pyramid_bm25_add(ids bigint[], levels text[], docs bigint[], texts text[]) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    cfg regconfig := pyramid_ts_config();
BEGIN
    IF coalesce(cardinality(ids), 0) = 0 THEN   -- array_agg of no rows is NULL
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

CREATE OR REPLACE FUNCTION pyramid_bm25_remove(ids bigint[], levels text[]) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF coalesce(cardinality(ids), 0) = 0 THEN
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

CREATE OR REPLACE FUNCTION pyramid_items_bm25_insert() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pyramid_bm25_add(array_agg(n.id ORDER BY n.id), array_agg(n.level ORDER BY n.id),
                             array_agg(n.document_id ORDER BY n.id), array_agg(n.text ORDER BY n.id))
    FROM new_items n;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION pyramid_items_bm25_delete() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pyramid_bm25_remove(array_agg(o.id ORDER BY o.id), array_agg(o.level ORDER BY o.id))
    FROM old_items o;
    RETURN NULL;
END
$$;

-- Updates that change what BM25 sees (text, level, document) re-index those items; others (a new
-- embedding, the stale flag) cost one join of the transition tables.
CREATE OR REPLACE FUNCTION pyramid_items_bm25_update() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pyramid_bm25_remove(array_agg(o.id ORDER BY o.id), array_agg(o.level ORDER BY o.id))
    FROM old_items o JOIN new_items n ON n.id = o.id
    WHERE (n.text, n.level, n.document_id) IS DISTINCT FROM (o.text, o.level, o.document_id);
    PERFORM pyramid_bm25_add(array_agg(n.id ORDER BY n.id), array_agg(n.level ORDER BY n.id),
                             array_agg(n.document_id ORDER BY n.id), array_agg(n.text ORDER BY n.id))
    FROM new_items n JOIN old_items o ON o.id = n.id
    WHERE (n.text, n.level, n.document_id) IS DISTINCT FROM (o.text, o.level, o.document_id);
    RETURN NULL;
END
$$;

-- TRUNCATE items (or documents CASCADE) empties the index and its statistics with it.
CREATE OR REPLACE FUNCTION pyramid_items_bm25_truncate() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    TRUNCATE bm25_postings, bm25_levels, bm25_level_deltas, bm25_terms, bm25_term_deltas, bm25_impact_ref;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_bm25_truncate AFTER TRUNCATE ON items
    FOR EACH STATEMENT EXECUTE FUNCTION pyramid_items_bm25_truncate();
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
CREATE OR REPLACE FUNCTION pyramid_query_lexemes(query text)
RETURNS TABLE (lexeme text, qtf integer)
LANGUAGE sql STABLE
AS $$ SELECT u.lexeme, cardinality(u.positions) FROM unnest(to_tsvector(pyramid_ts_config(), coalesce(query, '')))
      AS u(lexeme, positions, weights) $$;

-- A glob (* ? and literal characters) as a LIKE pattern (escape character \).
CREATE OR REPLACE FUNCTION pyramid_glob_like(glob text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT replace(replace(replace(replace(replace(glob, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_') $$;

-- Ids of the documents whose source matches one of the globs (whole path, or its tail after a /).
CREATE OR REPLACE FUNCTION pyramid_match_documents(globs text[]) RETURNS bigint[]
LANGUAGE sql STABLE
AS $$ SELECT coalesce(array_agg(d.id ORDER BY d.id), '{}') FROM documents d
      WHERE EXISTS (SELECT 1 FROM unnest(globs) g
                    WHERE d.source LIKE pyramid_glob_like(g) ESCAPE '\'
                       OR d.source LIKE '%/' || pyramid_glob_like(g) ESCAPE '\') $$;

-- Tuning knobs, read from custom settings so that a session (a test, a DBA) can change them with
-- SET: pyramid.exact_below (a document filter that leaves at most this many items of a level is
-- served by scoring exactly those items), pyramid.scan_below (a query whose postings lists hold at
-- most this many entries in all is scored by reading them whole, faster than pruning),
-- pyramid.prune_long_lists (pruning is tried only when at most this many of the query's lists are
-- too long to be read whole in its first round) and
-- pyramid.prune_budget (pruning gives up for the full scan once reading on would pass this share
-- of the query's postings).
CREATE OR REPLACE FUNCTION pyramid_setting(name text, fallback double precision) RETURNS double precision
LANGUAGE sql STABLE
AS $$ SELECT coalesce(nullif(current_setting('pyramid.' || name, true), '')::double precision, fallback) $$;

-- One term's exact contribution: weight (= qtf · idf) · tf · (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)).
CREATE OR REPLACE FUNCTION pyramid_bm25_term(weight double precision, tf integer, dl integer, avgdl double precision,
                                  k1 double precision, b double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)) $$;

-- A query's terms within one level, as the reader's snapshot sees the statistics: N, avgdl, and
-- the lexemes present in the level with weight = qtf · ln(1 + (N - df + 0.5) / (df + 0.5)) (the
-- non-negative idf of Lucene; a query term repeated counts as often as it is repeated).
CREATE OR REPLACE FUNCTION pyramid_bm25_terms(query text, lvl text, OUT n bigint, OUT avgdl double precision,
                                   OUT lexemes text[], OUT weights double precision[], OUT dfs bigint[])
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    SELECT s.items, s.avgdl INTO n, avgdl FROM bm25_level_stats s WHERE s.level = lvl;
    IF n IS NULL OR n <= 0 OR avgdl <= 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(q.lexeme ORDER BY q.lexeme),
           array_agg(q.qtf * ln(1 + (n - t.df + 0.5) / (t.df + 0.5)) ORDER BY q.lexeme),
           array_agg(t.df ORDER BY q.lexeme)
    INTO lexemes, weights, dfs
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

-- The exact BM25 of the given items (of one level) for a query's terms, best first, at most k.
CREATE OR REPLACE FUNCTION pyramid_bm25_exact(ids bigint[], lexemes text[], weights double precision[],
                                              avgdl double precision, k1 double precision,
                                              b double precision, k integer)
RETURNS TABLE (item_id bigint, score double precision)
LANGUAGE sql STABLE
AS $$
    SELECT p.item_id, sum(pyramid_bm25_term(w.weight, p.tf, p.dl, avgdl, k1, b)) AS score
    FROM bm25_postings p
    JOIN unnest(lexemes, weights) AS w(lexeme, weight) ON w.lexeme = p.lexeme
    WHERE p.item_id = ANY(ids) AND p.lexeme = ANY(lexemes)
    GROUP BY p.item_id
    ORDER BY score DESC, p.item_id
    LIMIT k
$$;

-- The top k items of one level by Okapi BM25, exact. Filters (documents) apply before the limit.
--
-- Common terms have long postings lists, so by default the lists are read best-first by stored
-- impact, m entries per term, and the candidates found are scored exactly. An item that is in none
-- of the prefixes read scores at most the bound: the sum over terms of weight · (k1+1) · the last
-- impact read, times max(1, avgdl / avgdl_ref) (an impact computed with another avgdl is off by at
-- most that factor). An item read under some terms is bounded the same way for the others, and is
-- scored exactly (primary key) only if that bound reaches the k-th best known score. When the k-th
-- exact score reaches the bound the answer is the exhaustive one (up to ties within 1e-6 relative);
-- otherwise m grows fourfold and the loop reads further.
-- exhaustive => true scores every posting (the reference the pruned answer is tested against).
CREATE OR REPLACE FUNCTION pyramid_bm25(query text, lvl text, k integer DEFAULT 10, doc_ids bigint[] DEFAULT NULL,
                             k1 double precision DEFAULT 1.2, b double precision DEFAULT 0.75,
                             exhaustive boolean DEFAULT false)
RETURNS TABLE (item_id bigint, score double precision)
LANGUAGE plpgsql STABLE ROWS 100
AS $$
#variable_conflict use_column
DECLARE
    st record;
    ref record;
    allowed bigint[];
    m integer;
    factor double precision;
    bound double precision;
    seen_ids bigint[];
    seen_low double precision[];
    seen_high double precision[];
    total bigint;
    spent bigint := 0;
    scores double precision[];
    theta double precision;
    edge double precision;
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
                         LIMIT pyramid_setting('exact_below', 20000)::integer + 1);
    END IF;
    SELECT r.avgdl, r.ref_k1, r.ref_b INTO ref FROM bm25_impact_ref r WHERE r.level = lvl;
    IF cardinality(allowed) <= pyramid_setting('exact_below', 20000) THEN
        -- A small filtered set: score all of its postings of the query's lexemes (primary key).
        RETURN QUERY
        SELECT e.item_id, e.score FROM pyramid_bm25_exact(allowed, st.lexemes, st.weights, st.avgdl, k1, b, k) e;
        RETURN;
    END IF;
    IF NOT (exhaustive OR ref.avgdl IS NULL OR ref.ref_k1 <> k1 OR ref.ref_b <> b
            OR (SELECT sum(d) FROM unnest(st.dfs) d) <= pyramid_setting('scan_below', 20000)
            OR (SELECT count(*) FROM unnest(st.dfs) d WHERE d > 16 * greatest(k, 32))
               > pyramid_setting('prune_long_lists', 1)) THEN
        -- To the full scan below: stored impacts bound only the k1 and b they were computed with;
        -- short lists are cheaper to score whole; and with two or more long lists of similar
        -- weight the bound falls slowly, so pruning ends up reading about as much, in more steps
        -- (measured on a million items: 3-4x slower there, 2-3x faster with one long list).
        factor := greatest(1, st.avgdl / ref.avgdl) * (k1 + 1);
        total := (SELECT sum(d) FROM unnest(st.dfs) d);
        m := greatest(k, 32);
        LOOP
            WITH lists AS MATERIALIZED (
                SELECT t.ord, c.item_id, c.impact,
                       pyramid_bm25_term(st.weights[t.ord], c.tf, c.dl, st.avgdl, k1, b) AS part
                FROM unnest(st.lexemes) WITH ORDINALITY AS t(lexeme, ord)
                CROSS JOIN LATERAL (
                    SELECT p.item_id, p.impact, p.tf, p.dl FROM bm25_postings p
                    WHERE p.level = lvl AND p.lexeme = t.lexeme
                      AND (doc_ids IS NULL OR p.document_id = ANY(doc_ids))
                    ORDER BY p.impact DESC, p.item_id
                    -- Lists up to 16 m long are read whole: their terms then bound nothing, and the
                    -- common terms, whose weights are small, are all that is left to bound (MaxScore).
                    LIMIT CASE WHEN st.dfs[t.ord] <= 16 * m THEN st.dfs[t.ord] ELSE m END
                ) c
            ), cuts AS MATERIALIZED (
                -- The most an entry not read yet can add for each term (0 once its list is read whole).
                SELECT t.ord, coalesce(CASE WHEN st.dfs[t.ord] > 16 * m AND count(l.item_id) >= m
                                            THEN min(l.impact) END, 0)
                              * st.weights[t.ord] * factor AS rest
                FROM generate_subscripts(st.lexemes, 1) AS t(ord) LEFT JOIN lists l ON l.ord = t.ord
                GROUP BY t.ord
            ), seen AS MATERIALIZED (
                -- Exact contributions of the terms an item was read under, and the bound for the others.
                -- greatest(0, …): an item read under every term must keep high = low despite rounding.
                SELECT l.item_id, sum(l.part) AS low,
                       sum(l.part) + greatest(0, (SELECT sum(rest) FROM cuts) - sum(c.rest)) AS high
                FROM lists l JOIN cuts c ON c.ord = l.ord
                GROUP BY l.item_id
            )
            SELECT array_agg(x.item_id ORDER BY x.low DESC, x.item_id), array_agg(x.low ORDER BY x.low DESC, x.item_id),
                   array_agg(x.high ORDER BY x.low DESC, x.item_id), (SELECT sum(c.rest) FROM cuts c)
            INTO seen_ids, seen_low, seen_high, bound
            FROM seen x;
            -- The k best by their known part, scored exactly, give a k-th score to beat (each exact score
            -- is at least its known part, so this is at least the k-th known part).
            SELECT array_agg(e.score ORDER BY e.score DESC) INTO scores
            FROM pyramid_bm25_exact(seen_ids[1:k], st.lexemes, st.weights, st.avgdl, k1, b, k) e;
            theta := CASE WHEN cardinality(scores) >= k THEN scores[k] ELSE 0 END;
            -- Nothing unread can beat it (up to 1e-6 relative, the rounding of real-valued impacts; it also
            -- lets a run of tied scores end the loop instead of being read through): score exactly every
            -- item read that might still reach it, and the answer is theirs.
            IF bound = 0 OR (theta > 0 AND bound <= theta * (1 + 1e-6)) THEN
                -- Items read under every term they contain are known exactly; the others that
                -- might still reach theta are scored exactly (primary key). The edge sits a hair
                -- below theta: a known part summed in another order may differ in its last bits
                -- from the exact score that set theta, and that item must not be lost.
                edge := theta * (1 - 1e-9);
                RETURN QUERY
                SELECT x.item_id, x.score
                FROM (SELECT e.item_id, e.score
                      FROM pyramid_bm25_exact(ARRAY(SELECT u.id FROM unnest(seen_ids, seen_low, seen_high)
                                                         AS u(id, low, high)
                                                    WHERE u.high >= edge AND u.high > u.low),
                                              st.lexemes, st.weights, st.avgdl, k1, b, k) e
                      UNION ALL
                      SELECT u.id, u.low FROM unnest(seen_ids, seen_low, seen_high) AS u(id, low, high)
                      WHERE u.high >= edge AND u.high <= u.low) x
                ORDER BY x.score DESC, x.item_id
                LIMIT k;
                RETURN;
            END IF;
            spent := spent + (SELECT sum(CASE WHEN d <= 16 * m THEN d ELSE m END) FROM unnest(st.dfs) d);
            m := m * 4;
            -- Reading on would cost about as much as the full scan: bounded pruning stops here.
            EXIT WHEN spent + (SELECT sum(CASE WHEN d <= 16 * m THEN d ELSE m END) FROM unnest(st.dfs) d)
                      > total * pyramid_setting('prune_budget', 0.5);
        END LOOP;
    END IF;
    RETURN QUERY
    SELECT p.item_id, sum(pyramid_bm25_term(w.weight, p.tf, p.dl, st.avgdl, k1, b)) AS s
    FROM unnest(st.lexemes, st.weights) AS w(lexeme, weight)
    JOIN bm25_postings p ON p.level = lvl AND p.lexeme = w.lexeme
    WHERE doc_ids IS NULL OR p.document_id = ANY(doc_ids)
    GROUP BY p.item_id ORDER BY s DESC, p.item_id LIMIT k;
END
$$;

-- The k nearest items of one level by cosine similarity. Filters run inside the index scan
-- (iterative scans go on past filtered-out rows), or, for a small filtered set, as an exact scan of
-- just those items. Custom plans let the planner match the level to its partial HNSW index.
CREATE OR REPLACE FUNCTION pyramid_vector(query_embedding vector, lvl text, k integer DEFAULT 10,
                               doc_ids bigint[] DEFAULT NULL)
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
    IF doc_ids IS NOT NULL THEN
        allowed := ARRAY(SELECT i.id FROM items i
                         WHERE i.document_id = ANY(doc_ids) AND i.level = lvl AND i.embedding IS NOT NULL
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
    b double precision DEFAULT 0.75
)
RETURNS TABLE (rank integer, item_id bigint, level text, document_id bigint, fused double precision,
               bm25 double precision, bm25_rank integer, similarity double precision, vector_rank integer)
-- ROWS 10: callers join the result to items and documents; the estimate keeps those index lookups.
LANGUAGE plpgsql STABLE ROWS 10
AS $$
#variable_conflict use_column
DECLARE
    known constant text[] := ARRAY['page', 'insight', 'concept', 'abstract', 'recollection'];
    lvls text[];
    doc_ids bigint[];
    use_bm25 boolean := mode IN ('hybrid', 'bm25');
    use_vector boolean := mode IN ('hybrid', 'vector') AND query_embedding IS NOT NULL;
    wb double precision;   -- the BM25 leg's weight in a weighted fusion
    wr double precision;   -- and in reciprocal rank fusion
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
    wr := CASE WHEN use_bm25 AND use_vector THEN weight_bm25 ELSE 0.5 END;
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
