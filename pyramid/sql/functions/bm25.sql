-- Okapi BM25 of one level, exact, with pruning by stored impacts.

-- The query's lexemes and how often each occurs in it, from the same to_tsvector as the items: user
-- text is never parsed as tsquery syntax, so operators and quotes in it are plain characters.
CREATE OR REPLACE FUNCTION pyramid_query_lexemes(query text)
RETURNS TABLE (lexeme text, qtf integer)
LANGUAGE sql STABLE
AS $$ SELECT u.lexeme, cardinality(u.positions) FROM unnest(to_tsvector(pyramid_ts_config(), coalesce(query, '')))
      AS u(lexeme, positions, weights) $$;

-- One term's exact contribution: weight (= qtf · idf) · tf · (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)).
CREATE OR REPLACE FUNCTION pyramid_bm25_term(weight double precision, tf integer, dl integer, avgdl double precision,
                                  k1 double precision, b double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT weight * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)) $$;

-- A query's terms within one level of the given collections, as the reader's snapshot sees the
-- statistics: N, avgdl, and the lexemes present with weight = qtf · ln(1 + (N - df + 0.5) / (df + 0.5))
-- (the non-negative idf of Lucene; a query term repeated counts as often as it is repeated). The
-- statistics are kept per collection and summed here over the collections searched, so they are
-- exactly those of what is searched.
CREATE OR REPLACE FUNCTION pyramid_bm25_terms(query text, lvl text, cols integer[], OUT n bigint,
                                   OUT avgdl double precision, OUT lexemes text[], OUT weights double precision[],
                                   OUT dfs bigint[])
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    SELECT sum(s.items)::bigint, CASE WHEN sum(s.items) > 0 THEN sum(s.total_dl)::double precision / sum(s.items) END
    INTO n, avgdl
    FROM bm25_level_stats s WHERE s.level = lvl AND s.collection_id = ANY(cols);
    IF n IS NULL OR n <= 0 OR avgdl IS NULL OR avgdl <= 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(q.lexeme ORDER BY q.lexeme),
           array_agg(q.qtf * ln(1 + (n - t.df + 0.5) / (t.df + 0.5)) ORDER BY q.lexeme),
           array_agg(t.df ORDER BY q.lexeme)
    INTO lexemes, weights, dfs
    FROM pyramid_query_lexemes(query) q
    CROSS JOIN LATERAL (
        SELECT sum(x.df) AS df
        FROM (SELECT c.df FROM bm25_terms c
              WHERE c.collection_id = ANY(cols) AND c.level = lvl AND c.lexeme = q.lexeme
              UNION ALL
              SELECT d.df FROM bm25_term_deltas d
              WHERE d.collection_id = ANY(cols) AND d.level = lvl AND d.lexeme = q.lexeme) x
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
-- cols: the collections searched (NULL: every one in scope, see pyramid_search_collections); each
-- (collection, lexeme) postings list is read on its own, best first.
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
                             exhaustive boolean DEFAULT false, cols integer[] DEFAULT NULL)
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
    cols := pyramid_search_collections(cols);
    st := pyramid_bm25_terms(query, lvl, cols);
    IF st.lexemes IS NULL THEN
        RETURN;
    END IF;
    IF doc_ids IS NOT NULL THEN
        allowed := ARRAY(SELECT i.id FROM items i
                         WHERE i.document_id = ANY(doc_ids) AND i.level = lvl AND i.collection_id = ANY(cols)
                         LIMIT pyramid_setting('exact_below', 20000)::integer + 1);
    END IF;
    -- One bound for every collection's impacts: the smallest reference avgdl (an impact computed
    -- with reference r is off from the exact term by at most max(1, avgdl / r)); pruning needs all of
    -- them computed with the k1 and b asked for.
    SELECT min(r.avgdl) AS avgdl, bool_and(r.ref_k1 = k1 AND r.ref_b = b) AS same INTO ref
    FROM bm25_impact_ref r WHERE r.level = lvl AND r.collection_id = ANY(cols);
    IF cardinality(allowed) <= pyramid_setting('exact_below', 20000) THEN
        -- A small filtered set: score all of its postings of the query's lexemes (primary key).
        RETURN QUERY
        SELECT e.item_id, e.score FROM pyramid_bm25_exact(allowed, st.lexemes, st.weights, st.avgdl, k1, b, k) e;
        RETURN;
    END IF;
    IF NOT (exhaustive OR ref.avgdl IS NULL OR NOT ref.same
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
                SELECT t.ord, l.col, c.item_id, c.impact,
                       pyramid_bm25_term(st.weights[t.ord], c.tf, c.dl, st.avgdl, k1, b) AS part
                FROM unnest(st.lexemes) WITH ORDINALITY AS t(lexeme, ord)
                CROSS JOIN unnest(cols) AS l(col)
                CROSS JOIN LATERAL (
                    SELECT p.item_id, p.impact, p.tf, p.dl FROM bm25_postings p
                    WHERE p.collection_id = l.col AND p.level = lvl AND p.lexeme = t.lexeme
                      AND (doc_ids IS NULL OR p.document_id = ANY(doc_ids))
                    ORDER BY p.impact DESC, p.item_id
                    -- Lists up to 16 m long are read whole: their terms then bound nothing, and the
                    -- common terms, whose weights are small, are all that is left to bound (MaxScore).
                    LIMIT CASE WHEN st.dfs[t.ord] <= 16 * m THEN st.dfs[t.ord] ELSE m END
                ) c
            ), cuts AS MATERIALIZED (
                -- The most an entry not read yet can add for each term: the largest, over the
                -- collections, of the last impact read in a list that was cut (0 once read whole).
                SELECT x.ord, max(x.rest) AS rest
                FROM (SELECT t.ord, coalesce(CASE WHEN st.dfs[t.ord] > 16 * m AND count(l.item_id) >= m
                                                  THEN min(l.impact) END, 0)
                                    * st.weights[t.ord] * factor AS rest
                      FROM generate_subscripts(st.lexemes, 1) AS t(ord)
                      CROSS JOIN unnest(cols) AS c(col)
                      LEFT JOIN lists l ON l.ord = t.ord AND l.col = c.col
                      GROUP BY t.ord, c.col) x
                GROUP BY x.ord
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
            spent := spent + cardinality(cols) * (SELECT sum(CASE WHEN d <= 16 * m THEN d ELSE m END) FROM unnest(st.dfs) d);
            m := m * 4;
            -- Reading on would cost about as much as the full scan: bounded pruning stops here.
            EXIT WHEN spent + cardinality(cols) * (SELECT sum(CASE WHEN d <= 16 * m THEN d ELSE m END) FROM unnest(st.dfs) d)
                      > total * pyramid_setting('prune_budget', 0.5);
        END LOOP;
    END IF;
    RETURN QUERY
    SELECT p.item_id, sum(pyramid_bm25_term(w.weight, p.tf, p.dl, st.avgdl, k1, b)) AS s
    FROM unnest(st.lexemes, st.weights) AS w(lexeme, weight)
    JOIN bm25_postings p ON p.collection_id = ANY(cols) AND p.level = lvl AND p.lexeme = w.lexeme
    WHERE doc_ids IS NULL OR p.document_id = ANY(doc_ids)
    GROUP BY p.item_id ORDER BY s DESC, p.item_id LIMIT k;
END
$$;
