"""Collections and access control, negative first: a reader of collection A, connected as its own
PostgreSQL role, never sees anything of collection B, whose documents share words, names and file
names with A's; a writer of A cannot change B; BM25 over A scores exactly as in a database holding A
alone; and work on two collections does not wait on each other."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from ask_helpers import call, scripted, text
from conftest import ROOT, _create_database, _drop_database, run_cli
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pyramid import Pyramid
from pyramid.errors import BusyError, CollectionError, NotFoundError

A_DOCS = {
    "report.md": "# Orchid project\n\nThe orchid project is led by Mara Lind from the Uppsala office. "
    "The orchid greenhouse opened in March and grows two hundred plants.\n\n"
    "## Watering\n\nMara Lind waters the orchid beds every morning before nine.",
    "notes.md": "# Greenhouse notes\n\nThe greenhouse heating failed twice in April. Mara Lind ordered a "
    "new boiler for the orchid greenhouse, delivered in May.",
}
B_DOCS = {
    "report.md": "# Orchid budget\n\nThe orchid budget is confidential: the zeppelin fund pays four million. "
    "Mara Lind signed the zeppelin contract in secret.\n\n## Risks\n\nThe zeppelin hangar may flood.",
    "zeppelin.md": "# Zeppelin plans\n\nThe zeppelin will carry orchids from the greenhouse to Uppsala. "
    "Mara Lind chose the zeppelin pilot, Sven Rask.",
}
SECRET = "zeppelin"
QUERIES = ["orchid greenhouse Mara Lind", "zeppelin contract", "Who signed the zeppelin contract?", "report"]


def _write(folder: Path, docs: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in docs.items():
        (folder / name).write_text(body + "\n")
    return folder


def as_role(url: str, role: str) -> str:
    """The same database, connected as ``role`` (the embedded server trusts local connections)."""
    return make_conninfo(url, user=role)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("collections")
    return {"a": _write(root / "a", A_DOCS), "b": _write(root / "b", B_DOCS)}


@pytest.fixture(scope="module")
def setup(dsn: str, corpus: dict[str, Path]) -> dict[str, Any]:
    """Collections a and b in one database; reader_a may read a, writer_a may write a."""
    suffix = conninfo_to_dict(dsn)["dbname"][-8:]
    reader, writer = f"reader_a_{suffix}", f"writer_a_{suffix}"
    with Pyramid.open(dsn=dsn, collection="a") as kp:
        assert kp.ingest([corpus["a"]]).ok
        kp.grant(reader, "a")
        kp.grant(writer, "a", write=True)
    with Pyramid.open(dsn=dsn, collection="b") as kp:
        assert kp.ingest([corpus["b"]]).ok
    with psycopg.connect(dsn) as conn:
        ids = {
            name: [
                r[0]
                for r in conn.execute(
                    "SELECT i.id FROM items i JOIN collections c ON c.id = i.collection_id WHERE c.name = %s",
                    (name,),
                )
            ]
            for name in ("a", "b")
        }
        cids = dict(conn.execute("SELECT name, id FROM collections").fetchall())
    yield {"reader": reader, "writer": writer, "ids": ids, "collections": cids}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for role in (reader, writer):
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
        for row in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (f"kp_{conninfo_to_dict(dsn)['dbname']}_%",)
        ).fetchall():
            conn.execute(f'DROP OWNED BY "{row[0]}"')
            conn.execute(f'DROP ROLE "{row[0]}"')


@pytest.fixture(scope="module")
def reader(dsn: str, setup: dict[str, Any]) -> Iterator[Any]:
    """A pyramid connected as reader_a: row-level security decides what it sees."""
    with Pyramid.open(dsn=as_role(dsn, setup["reader"]), collection="a") as kp:
        yield kp


@pytest.fixture(scope="module")
def alone(pg_server_url: str, corpus: dict[str, Path]) -> Iterator[Any]:
    """A database holding collection a's documents alone: what a reader of a must see."""
    url = _create_database(pg_server_url, f"t_alone_{os.getpid()}")
    try:
        with Pyramid.open(dsn=url) as kp:
            assert kp.ingest([corpus["a"]]).ok
            yield kp
    finally:
        _drop_database(pg_server_url, f"t_alone_{os.getpid()}")


def _b_paths(corpus: dict[str, Path]) -> str:
    return str(corpus["b"])


def _view(hits: list[Any]) -> list[tuple[str, str, str, float | None, float | None]]:
    """What a hit is and how it scored; sorted, because equal fused scores are ordered by item id,
    and ids differ between two databases."""
    return sorted(
        (
            h.source,
            h.level,
            h.text,
            None if h.bm25 is None else round(h.bm25, 9),
            None if h.vector is None else round(h.vector, 6),
        )
        for h in hits
    )


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "vector"])
@pytest.mark.parametrize("fusion", ["rrf", "weighted"])
def test_a_reader_searches_exactly_what_a_database_of_a_alone_holds(
    reader: Any, alone: Any, corpus: dict[str, Path], mode: str, fusion: str
) -> None:
    for query in QUERIES:
        for levels in (None, ["page"], ["insight"], ["concept"], ["abstract"], ["recollection"]):
            got = reader.search(query, mode=mode, fusion=fusion, levels=levels, k=20)
            want = alone.search(query, mode=mode, fusion=fusion, levels=levels, k=20)
            assert all(not h.source or h.source.startswith(str(corpus["a"])) for h in got), query
            assert all(SECRET not in h.text.lower() for h in got)
            # The same hits with the same scores: N, avgdl and df are A's alone.
            assert _view(got) == _view(want), (query, levels)


def test_the_owner_opened_on_a_sees_what_the_reader_sees(dsn: str, reader: Any) -> None:
    with Pyramid.open(dsn=dsn, collection="a") as owner:
        for query in QUERIES:
            assert _view(owner.search(query, k=20)) == _view(reader.search(query, k=20))
        assert [d.source for d in owner.documents()] == [d.source for d in reader.documents()]


def test_nothing_of_b_is_found_by_id_name_or_file(
    reader: Any, setup: dict[str, Any], corpus: dict[str, Path]
) -> None:
    b_item = setup["ids"]["b"][0]
    with pytest.raises(NotFoundError):
        reader.expand(b_item)
    with pytest.raises(NotFoundError):
        reader.document(str(corpus["b"] / "zeppelin.md"))
    # report.md names a's file only: b's report.md is not there to make the name ambiguous.
    assert reader.document("report.md").document.source == str(corpus["a"] / "report.md")
    assert [d.source for d in reader.documents()] == sorted(str(corpus["a"] / n) for n in A_DOCS)
    assert not reader.evidence(SECRET) or all(SECRET not in e.text.lower() for e in reader.evidence(SECRET))
    assert all(i.startswith(str(corpus["a"])) for i in [e.source for e in reader.evidence("orchid budget")])
    stats = reader.stats()
    assert sum(stats.documents.values()) == len(A_DOCS)
    overview = reader.overview()
    assert SECRET not in json.dumps(overview.model_dump(mode="json")).lower()


def test_a_scripted_ask_for_bs_ids_gets_nothing_of_b(reader: Any, setup: dict[str, Any]) -> None:
    b_ids = setup["ids"]["b"]
    model, seen = scripted(
        call("expand", item_id=b_ids[0]),
        call("search", query="zeppelin contract"),
        text("done"),
        text(f"Mara Lind signed the zeppelin contract [report.md, p. 1] [item {b_ids[1]}]."),
        text("Mara Lind leads the orchid project [report.md, p. 1]."),
    )
    answer = reader.ask("Who signed the zeppelin contract?", model=model)
    returned = json.dumps([str(p) for messages in seen for m in messages for p in m.parts])
    assert "four million" not in returned and "Sven Rask" not in returned
    for citation in answer.citations:
        assert citation.item_id not in b_ids
    assert all(e.id not in b_ids for e in answer.evidence)


def test_the_toolset_refuses_bs_ids_and_finds_none_of_bs_text(reader: Any, setup: dict[str, Any]) -> None:
    import asyncio

    session = reader.tool_session()
    hits = asyncio.run(session.search("zeppelin hangar flood", k=20))
    assert all(SECRET not in h.text.lower() for h in hits)
    from pyramid.search.tools import ToolRefused

    with pytest.raises(ToolRefused):
        asyncio.run(session.expand(setup["ids"]["b"][0]))


@pytest.mark.anyio
async def test_an_mcp_session_as_the_reader_sees_only_a(dsn: str, setup: dict[str, Any]) -> None:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYRAMID_DSN": as_role(dsn, setup["reader"]),
        "PYRAMID_COLLECTION": "a",
    }
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "pyramid", "mcp"], env=env, cwd=str(ROOT)
    )
    async with (
        stdio_client(server, errlog=sys.stderr) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("search", {"query": "zeppelin contract Mara Lind", "k": 20})
        assert not result.is_error
        assert SECRET not in json.dumps(result.structured_content).lower()
        refused = await session.call_tool("expand", {"item_id": setup["ids"]["b"][0]})
        assert refused.is_error or "no item" in json.dumps(refused.structured_content).lower()


def test_sql_as_the_reader_reveals_nothing_of_b(dsn: str, setup: dict[str, Any], alone: Any) -> None:
    b_ids = setup["ids"]["b"]
    with psycopg.connect(as_role(dsn, setup["reader"])) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM collections")]
        assert names == ["a"]
        items = conn.execute("SELECT id, text, collection_id FROM items").fetchall()
        assert items and not {i[0] for i in items} & set(b_ids)
        assert all(SECRET not in i[1].lower() for i in items)
        for table in (
            "documents",
            "item_sources",
            "bm25_postings",
            "bm25_levels",
            "bm25_level_deltas",
            "bm25_terms",
            "bm25_term_deltas",
            "bm25_impact_ref",
            "llm_outputs",
            "distill_usage",
            "learned_recollections",
            "ingest_jobs",
            "bm25_level_stats",
            "bm25_term_stats",
        ):
            rows = conn.execute(f"SELECT DISTINCT collection_id FROM {table}").fetchall()
            assert {r[0] for r in rows} <= {items[0][2]}, table
        assert conn.execute("SELECT count(*) FROM bm25_term_stats WHERE lexeme = 'zeppelin'").fetchone() == (
            0,
        )
        found = conn.execute("SELECT item_id FROM pyramid_search('zeppelin')").fetchall()
        assert found == []
        for level in ("page", "insight", "concept"):
            got = conn.execute(
                "SELECT item_id, score FROM pyramid_bm25('orchid', %s, 50)", (level,)
            ).fetchall()
            assert got and not {g[0] for g in got} & set(b_ids)
            embedding = conn.execute(
                "SELECT embedding FROM items WHERE level = %s LIMIT 1", (level,)
            ).fetchone()[0]
            near = conn.execute(
                "SELECT item_id FROM pyramid_vector(%s::vector, %s, 100)", (embedding, level)
            ).fetchall()
            assert near and not {n[0] for n in near} & set(b_ids)
        # Asking for b by name is the same error as asking for a collection that does not exist.
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="no collection you can read"):
            conn.execute("SELECT * FROM pyramid_search('orchid', collections => ARRAY['b'])")
    with psycopg.connect(alone.url) as conn:
        want = conn.execute("SELECT score FROM pyramid_bm25('orchid greenhouse', 'page', 50)").fetchall()
    with psycopg.connect(as_role(dsn, setup["reader"])) as conn:
        got = conn.execute("SELECT score FROM pyramid_bm25('orchid greenhouse', 'page', 50)").fetchall()
    assert [round(g[0], 9) for g in got] == [round(w[0], 9) for w in want]


def test_a_reader_cannot_write_and_a_writer_of_a_cannot_touch_b(dsn: str, setup: dict[str, Any]) -> None:
    b_ids = setup["ids"]["b"]
    with psycopg.connect(as_role(dsn, setup["reader"]), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM items")
    with psycopg.connect(as_role(dsn, setup["writer"])) as conn:
        assert conn.execute("DELETE FROM items WHERE id = ANY(%s)", (b_ids,)).rowcount == 0
        assert (
            conn.execute(
                "UPDATE documents SET title = 'x' WHERE collection_id <> "
                "(SELECT id FROM collections WHERE name = 'a')"
            ).rowcount
            == 0
        )
        b = conn.execute("SELECT count(*) FROM collections WHERE name = 'b'").fetchone()
        assert b == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO documents (collection_id, source, path) VALUES (%s, '/x', '/x')",
                (setup["collections"]["b"],),
            )
        conn.rollback()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM items WHERE id = ANY(%s)", (b_ids,)).fetchone() == (
            len(b_ids),
        )
        assert conn.execute("SELECT count(*) FROM documents WHERE title = 'x'").fetchone() == (0,)


def test_a_writer_ingests_into_a_and_not_into_b(dsn: str, setup: dict[str, Any], tmp_path: Path) -> None:
    extra = _write(
        tmp_path / "extra", {"extra.md": "# Extra\n\nThe orchid seedlings arrived on Friday morning."}
    )
    with Pyramid.open(dsn=as_role(dsn, setup["writer"]), collection="a") as kp:
        report = kp.ingest([extra])
        assert report.ok, [(r.outcome, r.reason) for r in report.results]
        assert kp.search("orchid seedlings Friday", k=3)[0].source == str(extra / "extra.md")
    with Pyramid.open(dsn=as_role(dsn, setup["writer"]), collection="a") as kp:
        assert kp.sync([extra]).ok  # no change
    with pytest.raises(CollectionError, match="no collection 'b'"):
        with Pyramid.open(dsn=as_role(dsn, setup["writer"]), collection="b") as kp:
            kp.ingest([extra])


def test_recollections_never_join_two_collections(dsn: str, setup: dict[str, Any]) -> None:
    with psycopg.connect(dsn) as conn:
        crossing = conn.execute(
            "SELECT count(*) FROM item_sources s JOIN items i ON i.id = s.item_id"
            " LEFT JOIN items src ON src.id = s.source_item_id"
            " LEFT JOIN documents d ON d.id = s.source_document_id"
            " WHERE src.collection_id <> i.collection_id OR d.collection_id <> i.collection_id"
        ).fetchone()
        assert crossing == (0,)
        a_item, b_item = setup["ids"]["a"][0], setup["ids"]["b"][0]
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(
                "INSERT INTO item_sources (collection_id, item_id, source_item_id)"
                " SELECT collection_id, id, %s FROM items WHERE id = %s",
                (b_item, a_item),
            )


def test_a_file_in_two_collections_is_two_documents(dsn: str, corpus: dict[str, Path]) -> None:
    with Pyramid.open(dsn=dsn, collection="c") as kp:
        assert kp.ingest([corpus["a"] / "notes.md"]).counts()["added"] == 1
        assert [d.source for d in kp.documents()] == [str(corpus["a"] / "notes.md")]
    with Pyramid.open(dsn=dsn, collections=["a", "c"]) as kp:
        assert [d.source for d in kp.documents()].count(str(corpus["a"] / "notes.md")) == 2
        removed = kp.remove_collection("c")
        assert removed.documents == 1
    with Pyramid.open(dsn=dsn, collection="a") as kp:
        assert len(kp.documents()) >= len(A_DOCS)


def test_writers_of_two_collections_do_not_wait_on_each_other(dsn: str, tmp_path: Path) -> None:
    folder = _write(tmp_path / "d", {"d.md": "# D\n\nA short document about tulips and their bulbs."})

    with Pyramid.open(dsn=dsn, collection="d1") as first, Pyramid.open(dsn=dsn, collection="d2") as second:

        async def hold_and_ingest() -> None:
            async with first.runtime.db.writer_lock(wait=0):
                report = await second.aingest([folder], wait=0)
                assert report.ok
                with pytest.raises(BusyError):
                    async with first.runtime.db.writer_lock(wait=0):
                        pass

        first.run(hold_and_ingest())
        first.remove_collection("d2")
        first.remove_collection("d1")


def test_removing_a_collection_leaves_the_others_statistics_exact(dsn: str, corpus: dict[str, Path]) -> None:
    with Pyramid.open(dsn=dsn, collection="e") as kp:
        kp.ingest([corpus["b"]])
        kp.remove_collection("e")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM collections WHERE name = 'e'").fetchone() == (0,)
        # The statistics of what is left equal a recount of the postings.
        stored = conn.execute(
            "SELECT collection_id, level, lexeme, df FROM bm25_term_stats ORDER BY 1, 2, 3"
        ).fetchall()
        recount = conn.execute(
            "SELECT collection_id, level, lexeme, count(*) FROM bm25_postings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
        assert stored == recount


def test_the_cli_lists_grants_and_refuses_a_missing_collection(dsn: str, setup: dict[str, Any]) -> None:
    listed = run_cli("collections", "--json", dsn=dsn)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["a"]["documents"] >= len(A_DOCS) and rows["b"]["documents"] == len(B_DOCS)
    assert {"role": setup["reader"], "access": "read"} in rows["a"]["grants"]
    missing = run_cli("search", "orchid", "--collection", "nope", dsn=dsn)
    assert missing.returncode == 2
    assert "there is no collection 'nope'" in missing.stderr
    hidden = run_cli("search", "zeppelin", "--collection", "b", dsn=as_role(dsn, setup["reader"]))
    assert hidden.returncode == 2 and "there is no collection 'b'" in hidden.stderr
    role = f"cli_{setup['reader']}"
    granted = run_cli("grant", role, "b", "--json", dsn=dsn)
    assert granted.returncode == 0, granted.stderr
    found = run_cli("search", "zeppelin", "--collection", "b", "--json", dsn=as_role(dsn, role))
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)
    revoked = run_cli("revoke", role, "b", dsn=dsn)
    assert revoked.returncode == 0 and "may no longer" in revoked.stderr
    again = run_cli("search", "zeppelin", "--collection", "b", dsn=as_role(dsn, role))
    assert again.returncode == 2
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')


def test_serve_runs_each_api_token_as_its_role(
    dsn: str, setup: dict[str, Any], corpus: dict[str, Path], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from pyramid.serve import create_app
    from pyramid.serve.auth import COOKIE

    with Pyramid.open(dsn=dsn) as kp:
        reading, token_a = kp.create_token(["a"], name="team a")
        writing, token_b = kp.create_token(["b"], write=True)
        app = create_app(kp, upload_dir=tmp_path / "uploads")
        with TestClient(app) as client:
            assert client.get("/api/documents").status_code == 401  # the database has tokens now
            assert (
                client.get("/api/documents", headers={"Authorization": "Bearer kp_wrong"}).status_code == 401
            )
            a = {"Authorization": f"Bearer {token_a}"}
            docs = client.get("/api/documents", headers=a).json()
            assert docs and not [d for d in docs if d["source"].startswith(str(corpus["b"]))]
            hits = client.get(
                "/api/search", params={"q": "zeppelin contract Mara Lind", "k": 20}, headers=a
            ).json()
            assert SECRET not in json.dumps(hits).lower()
            b_item = setup["ids"]["b"][0]
            assert client.get(f"/api/items/{b_item}", headers=a).status_code == 404
            refused = client.post(
                "/api/ingest", headers=a, files={"file": ("x.md", b"# X\n\nSome text here.")}
            )
            assert refused.status_code == 403
            b = {"Authorization": f"Bearer {token_b}"}
            added = client.post(
                "/api/ingest", headers=b, files={"file": ("zep.md", b"# Zep\n\nThe zeppelin hangar.")}
            )
            assert added.status_code == 200, added.text
            assert any(
                d["source"].endswith("b/zep.md") for d in client.get("/api/documents", headers=b).json()
            )
            assert not any(
                d["source"].endswith("zep.md") for d in client.get("/api/documents", headers=a).json()
            )
            # A browser gives an API token once and keeps a session cookie that is not the token.
            page = client.get(f"/?token={token_a}", follow_redirects=False)
            assert page.status_code == 303
            cookie = client.cookies.get(COOKIE)
            assert cookie and token_a not in cookie
            index = client.get("/").text
            assert "Orchid project" in index and "Orchid budget" not in index
            client.cookies.clear()
            kp.revoke_token(reading.id)
            assert client.get("/api/documents", headers=a).status_code == 401
        kp.revoke_token(writing.id)
        assert kp.tokens() == []
