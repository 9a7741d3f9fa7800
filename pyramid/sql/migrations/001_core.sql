-- 001: documents, the items of every pyramid level, and their provenance.
-- {embedding_dim} is replaced by the migration runner with the integer dimension of the embedding
-- model the database is created with (recorded in pyramid_meta); {levels} by the list of levels of
-- pyramid/store/schema.py; nothing else is templated.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE pyramid_meta (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);

CREATE TABLE documents (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text NOT NULL UNIQUE,          -- absolute path, or path#item for one item of a feed
    path         text NOT NULL,                 -- the file it came from
    file_sha256  text,                          -- sha256 of the whole file at the last attempt
    sha256       text,                          -- sha256 of the stored version's content
    title        text NOT NULL DEFAULT '',
    format       text NOT NULL DEFAULT '',
    page_count   integer NOT NULL DEFAULT 0,
    paged        boolean NOT NULL DEFAULT false, -- real pages (PDF, slides, sheets) or split at headings
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'converted', 'distilled', 'ready', 'failed')),
    error        text,
    distiller    text,
    usage        jsonb NOT NULL DEFAULT '{}'::jsonb,
    meta         jsonb NOT NULL DEFAULT '{}'::jsonb,
    file_size    bigint,
    file_mtime   double precision,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_path ON documents (path);

CREATE TABLE items (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id   bigint REFERENCES documents (id) ON DELETE CASCADE,  -- NULL for cross-document items
    level         text NOT NULL
                  CHECK (level = ANY ({levels})),
    ordinal       integer NOT NULL DEFAULT 0,      -- page number for pages, position otherwise
    title         text,                            -- a concept's name
    text          text NOT NULL,
    pages         integer[] NOT NULL DEFAULT '{}', -- the page numbers this item rests on
    embedding     vector({embedding_dim}),
    content_hash  text,                            -- sha256 of text (pages: incremental re-distillation)
    distiller     text,                            -- extractive / model name / user
    stale         boolean NOT NULL DEFAULT false,  -- a recollection whose sources changed
    meta          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_document_level ON items (document_id, level, ordinal);
CREATE INDEX items_level ON items (level);

-- Provenance: what each item was built from. The source may be another item or a whole document;
-- source_ref keeps a readable trail ("file.pdf p. 3", "doc.md") that survives the source's deletion,
-- so a recollection's audit trail still says what it came from after the source is gone.
CREATE TABLE item_sources (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id             bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    source_item_id      bigint REFERENCES items (id) ON DELETE SET NULL,
    source_document_id  bigint REFERENCES documents (id) ON DELETE SET NULL,
    source_ref          text NOT NULL DEFAULT ''
);
CREATE INDEX item_sources_item ON item_sources (item_id);
CREATE INDEX item_sources_source_item ON item_sources (source_item_id);
CREATE INDEX item_sources_source_document ON item_sources (source_document_id);

-- Dense leg: cosine HNSW over every level; level and document filters run inside the index scan
-- (pgvector iterative scans), never as a Python filter after LIMIT.
CREATE INDEX items_embedding ON items USING hnsw (embedding vector_cosine_ops);
