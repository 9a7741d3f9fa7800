"""A feed file names every document its items became: ``show``, ``remember --source`` and
``search --doc`` take ``news.rss`` as a user would type it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from pyramid import Pyramid
from pyramid.errors import NotFoundError

EXAMPLES = ROOT / "examples" / "docs"


@pytest.fixture(scope="module")
def feed(kp: Pyramid, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    folder = tmp_path_factory.mktemp("feed")
    for name in ("news.rss", "handbook.md"):
        shutil.copy(EXAMPLES / name, folder / name)
    kp.ingest([folder], distill=False)
    path = folder / "news.rss"
    items = sorted(d.id for d in kp.documents() if d.path == str(path))
    assert len(items) == 4  # the example feed has four items
    return path, items


def test_a_feed_file_names_all_its_items(kp: Pyramid, feed: tuple[Path, list[int]]) -> None:
    path, items = feed
    for name in ("news.rss", str(path), "feed*/news.rss".replace("feed*", path.parent.name)):
        assert sorted(d.id for d in kp.documents(named=name)) == items, name
    # One item is still one document, by its source.
    one = kp.documents(named=items[0])[0]
    assert [d.id for d in kp.documents(named=one.source)] == [items[0]]
    # Where one document is needed, the message lists the items instead of "no document matches".
    with pytest.raises(NotFoundError, match="holds 4 documents"):
        kp.document("news.rss")


def test_show_lists_the_items_of_a_feed(dsn: str, feed: tuple[Path, list[int]]) -> None:
    path, items = feed
    shown = run_cli("show", "news.rss", dsn=dsn, env={"COLUMNS": "100"})
    assert shown.returncode == 0, shown.stderr
    assert "holds 4 documents" in shown.stdout
    assert all(str(doc_id) in shown.stdout for doc_id in items)
    # From the feed's folder, its relative path names it too; --json gives the documents.
    as_json = run_cli("show", "news.rss", "--json", dsn=dsn, cwd=path.parent)
    assert as_json.returncode == 0, as_json.stderr
    listed = json.loads(as_json.stdout)
    assert listed["file"] == str(path)
    assert sorted(d["id"] for d in listed["documents"]) == items


def test_remember_and_search_take_a_feed_file(kp: Pyramid, feed: tuple[Path, list[int]]) -> None:
    _, items = feed
    memory = kp.remember("The harbour news and the handbook agree.", source=["news.rss", "handbook.md"])
    for doc_id in [*items, "handbook.md"]:
        assert memory.id in [r.id for r in kp.document(doc_id).recollections], doc_id
    hits = kp.search("robot", documents=["news.rss"], mode="bm25", levels=["page"], k=20)
    assert hits and {hit.document_id for hit in hits} <= set(items)
    # A glob over the file name matches the items too ("*.rss" matched none: their sources end in #guid).
    assert kp.search("robot", documents=["*.rss"], mode="bm25", levels=["page"], k=20)
