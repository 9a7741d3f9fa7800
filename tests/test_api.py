"""The Python API's shape: sync methods derived from their async twins, ``aopen`` as an async
context manager, and the public hooks (``run``/``arun``/``runtime``) that scripts below the API use."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pyramid import Pyramid

TWINS = [
    ("ingest", "aingest"),
    ("sync", "async_sync"),
    ("documents", "adocuments"),
    ("document", "adocument"),
    ("search", "asearch"),
    ("ask", "aask"),
    ("evidence", "aevidence"),
    ("expand", "aexpand"),
    ("remember", "aremember"),
    ("stats", "astats"),
    ("reembed", "areembed"),
]


@pytest.mark.unit
@pytest.mark.parametrize(("name", "twin"), TWINS)
def test_sync_method_has_its_twins_signature_and_docs(name: str, twin: str) -> None:
    sync, asynchronous = getattr(Pyramid, name), getattr(Pyramid, twin)
    assert inspect.iscoroutinefunction(asynchronous)
    assert not inspect.iscoroutinefunction(sync)
    assert inspect.signature(sync) == inspect.signature(asynchronous)
    assert sync.__doc__
    assert sync.__doc__ == asynchronous.__doc__
    assert sync.__name__ == name


@pytest.mark.unit
def test_sync_prunes_by_default_and_ingest_does_not() -> None:
    assert inspect.signature(Pyramid.sync).parameters["prune"].default is True
    assert inspect.signature(Pyramid.ingest).parameters["prune"].default is False


@pytest.mark.anyio
async def test_aopen_is_an_async_context_manager(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "direct.md"
    path.write_text("# Direct\n\nThe heron waits at the weir every morning.")
    async with Pyramid.aopen(dsn=dsn) as kp:
        report = await kp.aingest([path], distill=False)
        assert report.counts()["added"] == 1
        assert await kp.arun(_count_documents(kp)) == 1
    assert kp._closed  # the block closed it
    opened = await Pyramid.aopen(dsn=dsn)  # the awaited form still works
    try:
        assert [d.source for d in await opened.adocuments()] == [str(path)]
    finally:
        await opened.aclose()


@pytest.mark.anyio
async def test_aopen_awaited_twice_is_refused(dsn: str) -> None:
    opening = Pyramid.aopen(dsn=dsn)
    kp = await opening
    try:
        with pytest.raises(RuntimeError, match="already awaited"):
            await opening
    finally:
        await kp.aclose()


async def _count_documents(kp: Pyramid) -> int:
    async with kp.runtime.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM documents")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def test_run_executes_on_the_pyramids_loop(kp: Pyramid, tmp_path: Path) -> None:
    before = kp.run(_count_documents(kp))
    path = tmp_path / "run.md"
    path.write_text("# Run\n\nA coroutine handed to run sees what ingest stored.")
    kp.sync([path], distill=False)
    assert kp.run(_count_documents(kp)) == before + 1
    assert kp.runtime.settings is kp.settings
