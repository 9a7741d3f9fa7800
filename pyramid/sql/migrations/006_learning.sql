-- 006: recollections learned from answered questions (`ask --learn`), with a status and a history.
-- A learned recollection is an items row (level 'recollection', distiller 'learned'); its provenance
-- rows in item_sources name each cited item together with that item's document, so the triggers of
-- 003 mark it stale when a cited item goes (source_item_id set to NULL) or its document changes or
-- goes. This table keeps what the items row cannot: the finding's key, the question and the model
-- that produced it, what it cited (with the text hash each item had), its status and its history.
CREATE TABLE learned_recollections (
    item_id      bigint PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    sources_key  text NOT NULL,            -- the cited item ids, sorted, comma-separated
    question     text NOT NULL,
    model        text NOT NULL,
    -- valid: as learned or confirmed; revised: its text was replaced (old text in history);
    -- retired: its sources no longer support it (kept, left out of search). Stale is items.stale.
    status       text NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revised', 'retired')),
    cited        jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{item, level, document_id, pages, hash, ref}]
    history      jsonb NOT NULL DEFAULT '[]'::jsonb,   -- earlier versions and verdicts, oldest first
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    verified_at  timestamptz
);
-- One live recollection per finding: two `ask --learn` of the same finding cannot both insert.
CREATE UNIQUE INDEX learned_recollections_finding ON learned_recollections (sources_key)
    WHERE status <> 'retired';
-- Search leaves retired recollections out; this keeps that lookup an index probe.
CREATE INDEX learned_recollections_retired ON learned_recollections (item_id) WHERE status = 'retired';
