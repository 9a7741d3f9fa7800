-- 003: distillation. A cache of LLM outputs (a resumed or incremental run does not pay twice), a
-- ledger of the tokens every step spent, and recollections that go stale when a source goes.

-- One row per LLM call that produced a validated output. The key is a sha256 of everything the
-- output depends on (step, model, prompt, inputs), so an identical call is answered from here.
-- pages_key (insight windows) hashes only the window's page texts: re-distilling a changed document
-- can find the windows whose pages did not change even when the insights shown to them did.
CREATE TABLE llm_outputs (
    key         text PRIMARY KEY,
    step        text NOT NULL,
    model       text NOT NULL,
    source      text,                       -- the document it was made for; NULL for corpus steps
    position    integer,                    -- the window number of an insight step
    pages_key   text,
    output      jsonb NOT NULL,
    usage       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_outputs_source ON llm_outputs (source, step, position);
CREATE INDEX llm_outputs_pages ON llm_outputs (pages_key) WHERE pages_key IS NOT NULL;

-- What every distillation step spent, per document source (kept when the document goes, like an
-- invoice) or for the corpus (source NULL: the recollection step). Calls answered from llm_outputs
-- are counted in `cached` and cost no tokens.
CREATE TABLE distill_usage (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         text,
    step           text NOT NULL,
    model          text NOT NULL,
    requests       integer NOT NULL DEFAULT 0,
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    cached         integer NOT NULL DEFAULT 0,
    failed         boolean NOT NULL DEFAULT false,  -- spent on an attempt that did not store a version
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX distill_usage_source ON distill_usage (source);

-- A recollection whose source item or document disappears (a document replaced or deleted sets the
-- link to NULL through ON DELETE SET NULL) is stale: its audit trail still names the source in
-- source_ref, and the recollection step refreshes it.
CREATE FUNCTION pyramid_recollection_lost_source() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE items SET stale = true WHERE id = NEW.item_id AND level = 'recollection' AND NOT stale;
    RETURN NULL;
END
$$;

CREATE TRIGGER item_sources_lost
AFTER UPDATE OF source_item_id, source_document_id ON item_sources
FOR EACH ROW
WHEN ((OLD.source_item_id IS NOT NULL AND NEW.source_item_id IS NULL)
      OR (OLD.source_document_id IS NOT NULL AND NEW.source_document_id IS NULL))
EXECUTE FUNCTION pyramid_recollection_lost_source();

-- A recollection that names a whole document (a user's `remember --source`) is stale once that
-- document's content changes.
CREATE FUNCTION pyramid_recollection_document_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE items i SET stale = true
    FROM item_sources s
    WHERE s.source_document_id = NEW.id AND s.item_id = i.id
      AND i.level = 'recollection' AND NOT i.stale;
    RETURN NULL;
END
$$;

CREATE TRIGGER documents_content_changed
AFTER UPDATE OF sha256 ON documents
FOR EACH ROW
WHEN (OLD.sha256 IS NOT NULL AND OLD.sha256 IS DISTINCT FROM NEW.sha256)
EXECUTE FUNCTION pyramid_recollection_document_changed();

-- A deleted document's cached LLM outputs are of no further use.
CREATE FUNCTION pyramid_forget_llm_outputs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM llm_outputs WHERE source = OLD.source;
    RETURN NULL;
END
$$;

CREATE TRIGGER documents_deleted
AFTER DELETE ON documents
FOR EACH ROW EXECUTE FUNCTION pyramid_forget_llm_outputs();
