"""The database: migrations recorded and applied once, SQL functions applied by checksum, a database
built by the old migrations upgraded to the same schema as a new one, build info remembered, model
mismatch refused with the fix, the single-writer lock, re-embedding, and the embedded server's
lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from pyramid import Pyramid
from pyramid.errors import BusyError, EmbeddingMismatchError
from pyramid.sqlfiles import functions, migrations

OLD_MIGRATIONS = Path(__file__).parent / "fixtures" / "migrations_001_003"


def test_migrations_are_recorded_once(fresh_dsn: str) -> None:
    messages: list[str] = []
    with Pyramid.open(dsn=fresh_dsn, progress=lambda e: messages.append(e.message or "")) as kp:
        assert kp.build.schema_version == migrations()[-1].version
        assert kp.build.embedding_model == "all-MiniLM-L6-v2"
        assert kp.build.embedding_dim == 384
    assert any("001_core" in m for m in messages)
    again: list[str] = []
    with Pyramid.open(dsn=fresh_dsn, progress=lambda e: again.append(e.message or "")):
        pass
    assert not any("migration" in m for m in again)


def _build_with_old_migrations(url: str) -> None:
    """Build a database as knowledge-pyramid did before the functions left the migrations: 001-003
    as they were (a copy taken from git history), recorded the way the old runner recorded them."""
    import json

    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE pyramid_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for path in sorted(OLD_MIGRATIONS.glob("*.sql")):
            version, name = path.stem.split("_", 1)
            with conn.transaction():
                conn.execute(path.read_text("utf-8").replace("{embedding_dim}", "384"))
                conn.execute("INSERT INTO pyramid_migrations VALUES (%s, %s)", (int(version), name))
                if version == "001":
                    meta = {
                        "embedding_model": "all-MiniLM-L6-v2",
                        "embedding_dim": 384,
                        "text_search_config": "english",
                    }
                    for key, value in meta.items():
                        conn.execute(
                            "INSERT INTO pyramid_meta VALUES (%s, %s::jsonb)", (key, json.dumps(value))
                        )
        doc = conn.execute(
            "INSERT INTO documents (source, path) VALUES ('/old/a.md', '/old/a.md') RETURNING id"
        )
        (doc_id,) = doc.fetchone()  # type: ignore[misc]
        conn.execute(
            "INSERT INTO items (document_id, level, text) VALUES (%s, 'page', 'Lighthouses guide ships at night.')",
            (doc_id,),
        )


_SCHEMA_QUERIES = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
    " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    "functions": "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p"
    " WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'pyramid%' ORDER BY 1",
}


def _schema(url: str) -> dict[str, list[tuple[object, ...]]]:
    import psycopg

    with psycopg.connect(url) as conn:
        return {what: conn.execute(sql).fetchall() for what, sql in _SCHEMA_QUERIES.items()}


def test_a_database_built_by_the_old_migrations_upgrades_to_the_new_schema(fresh_dsn: str, dsn: str) -> None:
    _build_with_old_migrations(fresh_dsn)
    messages: list[str] = []
    with Pyramid.open(dsn=fresh_dsn, progress=lambda e: messages.append(e.message or "")) as kp:
        assert kp.build.schema_version == migrations()[-1].version
        hits = kp.search("lighthouses", mode="bm25")
        assert [h.text for h in hits] == ["Lighthouses guide ships at night."]
    assert any("004_function_checksums" in m for m in messages)
    assert any("Applying SQL functions" in m for m in messages)
    with Pyramid.open(dsn=dsn):
        pass  # a database built by the new migrations, for comparison
    upgraded, fresh = _schema(fresh_dsn), _schema(dsn)
    for what in _SCHEMA_QUERIES:
        assert upgraded[what] == fresh[what], what
    import psycopg

    with psycopg.connect(fresh_dsn) as conn:
        recorded = dict(conn.execute("SELECT name, sha256 FROM pyramid_sql_functions").fetchall())
    assert recorded == {f.name: f.sha256 for f in functions()}


def test_a_changed_function_file_is_reapplied(fresh_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    from pyramid import sqlfiles

    with Pyramid.open(dsn=fresh_dsn):
        pass
    edited = tuple(
        sqlfiles.FunctionFile(f.name, f.sql.replace("fallback) $$;", "fallback) + 0 $$;"))
        if f.name == "settings"
        else f
        for f in functions()
    )
    assert edited != functions()
    monkeypatch.setattr("pyramid.store.database.functions", lambda: edited)
    messages: list[str] = []
    with Pyramid.open(dsn=fresh_dsn, progress=lambda e: messages.append(e.message or "")):
        pass
    assert [m for m in messages if "SQL functions" in m] == ["Applying SQL functions: settings"]
    with psycopg.connect(fresh_dsn) as conn:
        (body,) = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'pyramid_setting'").fetchone()  # type: ignore[misc]
    assert "+ 0" in body


def test_another_embedding_model_is_refused_with_the_fix(fresh_dsn: str) -> None:
    with Pyramid.open(dsn=fresh_dsn):
        pass
    with pytest.raises(EmbeddingMismatchError) as info:
        Pyramid.open(dsn=fresh_dsn, embedding_model="some-org/some-other-model")
    message = str(info.value)
    assert "all-MiniLM-L6-v2" in message
    assert "pyramid reembed --embedding-model 'some-org/some-other-model'" in message


def test_the_mismatch_hint_never_suggests_a_missing_path(fresh_dsn: str) -> None:
    with Pyramid.open(dsn=fresh_dsn):
        pass
    with pytest.raises(EmbeddingMismatchError) as info:
        Pyramid.open(dsn=fresh_dsn, embedding_model="/nope/no-such-model")
    message = str(info.value)
    assert "--embedding-model 'all-MiniLM-L6-v2'" in message
    assert "pyramid reembed" not in message
    assert "no local folder" in message


def test_aliases_of_the_bundled_model_are_the_same_model(fresh_dsn: str) -> None:
    with Pyramid.open(dsn=fresh_dsn):
        pass
    with Pyramid.open(dsn=fresh_dsn, embedding_model="sentence-transformers/all-MiniLM-L6-v2") as kp:
        assert kp.build.embedding_model == "all-MiniLM-L6-v2"


def test_cli_reports_model_mismatch_as_usage_error(fresh_dsn: str) -> None:
    with Pyramid.open(dsn=fresh_dsn):
        pass
    done = run_cli("ls", "--embedding-model", "some-org/other", dsn=fresh_dsn)
    assert done.returncode == 2
    assert done.stderr.startswith("Error:")
    assert "pyramid reembed" in done.stderr
    assert "Traceback" not in done.stderr


def test_writer_lock_refuses_a_second_writer(kp: Pyramid) -> None:
    db = kp.runtime.db

    async def scenario() -> None:
        async with db.writer_lock(wait=0):
            with pytest.raises(BusyError, match="another ingest or sync"):
                async with db.writer_lock(wait=0.6):
                    pass
        async with db.writer_lock(wait=0):  # released: free again
            pass

    kp.run(scenario())


def _small_model(tmp_path: Path) -> Path:
    """A real, different sentence-transformers model: the bundled MiniLM with a 384→48 projection."""
    from sentence_transformers import SentenceTransformer, models

    from pyramid.embed import model_location

    base = SentenceTransformer(model_location("all-MiniLM-L6-v2"), device="cpu")
    dense = models.Dense(in_features=384, out_features=48)
    model = SentenceTransformer(modules=[*base, dense], device="cpu")
    path = tmp_path / "minilm-48"
    model.save(str(path))
    return path


def test_reembed_switches_the_model(fresh_dsn: str, tmp_path: Path) -> None:
    from pyramid.store import NewItem, write_items

    with Pyramid.open(dsn=fresh_dsn) as kp:

        async def add() -> None:
            texts = ["The cat sat on the mat.", "Interest rates rose in March."]
            vectors = await kp.runtime.embedder.aencode_documents(texts)
            async with kp.runtime.db.connection() as conn, conn.transaction():
                items = [
                    NewItem(key=str(i), level="insight", text=t, embedding=v)
                    for i, (t, v) in enumerate(zip(texts, vectors, strict=True))
                ]
                await write_items(conn, None, items)

        kp.run(add())
    other = _small_model(tmp_path)
    with Pyramid.open(dsn=fresh_dsn, embedding_model=str(other), check_model=False) as kp:
        # The default backend (auto) runs a model the onnx export cannot (a Dense head) on torch.
        assert kp.runtime.embedder.backend == "torch"
        assert kp.reembed() == 2
        assert kp.build.embedding_dim == 48
        assert kp.build.embedding_model == str(other.resolve())

        async def dims() -> list[int]:
            async with kp.runtime.db.connection() as conn:
                cur = await conn.execute("SELECT vector_dims(embedding) FROM items")
                return [row[0] for row in await cur.fetchall()]

        assert kp.run(dims()) == [48, 48]
    # Now the new model opens without complaint, and so does a pyramid that names no model: it
    # uses the one the database records (every command needed --embedding-model again). Naming
    # the old one is refused.
    with Pyramid.open(dsn=fresh_dsn, embedding_model=str(other)):
        pass
    with Pyramid.open(dsn=fresh_dsn) as kp:
        assert kp.runtime.embedder.name == str(other.resolve())
        assert kp.settings.embedding_model == str(other.resolve())
        assert [h.text for h in kp.search("cats on mats", mode="vector", k=1)] == ["The cat sat on the mat."]
    with pytest.raises(EmbeddingMismatchError):
        Pyramid.open(dsn=fresh_dsn, embedding_model="all-MiniLM-L6-v2")
    for command in (["ls"], ["search", "interest rates", "--mode", "vector", "-k", "1", "--json"]):
        done = run_cli(*command, dsn=fresh_dsn)
        assert done.returncode == 0, done.stderr
    assert "Interest rates rose in March." in done.stdout
    refused = run_cli("ls", dsn=fresh_dsn, env={"PYRAMID_EMBEDDING_MODEL": "all-MiniLM-L6-v2"})
    assert refused.returncode == 2 and "pyramid reembed" in refused.stderr


def test_embedded_server_lifecycle(tmp_path: Path) -> None:
    data_dir = tmp_path / "kp"
    done = run_cli("db", "url", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith("postgresql://") and "/pyramid" in url
    status = run_cli("db", "status", "--json", "--data-dir", str(data_dir))
    assert '"running": true' in status.stdout
    # The server is shared: a psycopg client can use the printed URL.
    import psycopg

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)
    stop = run_cli("db", "stop", "--data-dir", str(data_dir))
    assert stop.returncode == 0 and "Stopped" in stop.stderr
    status = run_cli("db", "status", "--json", "--data-dir", str(data_dir))
    assert '"running": false' in status.stdout


def test_concurrent_opens_share_one_embedded_server(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data_dir = tmp_path / "shared"
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: run_cli("db", "url", "--data-dir", str(data_dir)), range(4)))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert len({r.stdout.strip() for r in runs}) == 1
    run_cli("db", "stop", "--data-dir", str(data_dir))


def test_reembed_with_the_same_model_gives_a_fresh_ingests_concept_vectors(fresh_dsn: str) -> None:
    """Bug: ingest embeds a concept as ``name: description``, reembed embedded only the description,
    so after a re-embed with the same model concept search answered differently. On the default
    encoder (int8: each text is encoded alone, so re-encoding it among other texts changes nothing)."""
    import numpy as np
    import psycopg
    from pgvector.psycopg import register_vector

    handbook = Path(__file__).parent.parent / "examples" / "docs" / "handbook.md"

    def concept_vectors() -> dict[int, np.ndarray]:
        with psycopg.connect(fresh_dsn) as conn:
            register_vector(conn)
            rows = conn.execute(
                "SELECT id, embedding FROM items WHERE level = 'concept' ORDER BY id"
            ).fetchall()
        return {item_id: np.asarray(vec.to_numpy(), dtype=np.float64) for item_id, vec in rows}

    with Pyramid.open(dsn=fresh_dsn) as kp:
        kp.ingest([handbook])
        fresh = concept_vectors()
        assert len(fresh) >= 2
        query = (
            next(h.title for h in kp.search("handbook", levels=["concept"], k=1, mode="bm25") if h.title)
            or ""
        )
        searches = [("hybrid", query), ("vector", query), ("vector", "how do I ask for time off")]

        def results() -> list[list[tuple[int, int]]]:
            return [
                [(h.rank, h.id) for h in kp.search(q, levels=["concept"], k=10, mode=m)] for m, q in searches
            ]

        before = results()
        assert kp.reembed() > 0
        after = concept_vectors()
        assert after.keys() == fresh.keys()
        for item_id, vec in fresh.items():
            cosine = float(vec @ after[item_id] / (np.linalg.norm(vec) * np.linalg.norm(after[item_id])))
            assert cosine >= 0.9999, (item_id, cosine)
        assert results() == before
