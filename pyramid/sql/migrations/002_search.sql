-- 002: the tables of hybrid search. Okapi BM25 over the database's own to_tsvector lexemes, kept by
-- triggers on items; per-level HNSW indexes for the dense leg. The functions that write and read
-- them (pyramid_bm25_add, pyramid_bm25, pyramid_search, ...) live in pyramid/sql/functions/.
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
-- The trigger functions below are thin: they hand the transition tables to pyramid_bm25_add and
-- pyramid_bm25_remove (functions/bm25_index.sql), which are resolved when a trigger first fires,
-- after the functions have been applied.

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

-- Dense leg: one HNSW index per level instead of one over all levels, so a level's nearest
-- neighbours come from its own graph rather than from an iterative scan that skips other levels.
DROP INDEX items_embedding;
CREATE INDEX items_embedding_page ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'page';
CREATE INDEX items_embedding_insight ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'insight';
CREATE INDEX items_embedding_concept ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'concept';
CREATE INDEX items_embedding_abstract ON items USING hnsw (embedding vector_cosine_ops) WHERE level = 'abstract';
CREATE INDEX items_embedding_recollection ON items USING hnsw (embedding vector_cosine_ops)
    WHERE level = 'recollection';
