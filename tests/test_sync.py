"""`pyramid sync`: new and changed files ingested, deleted files removed — conservatively — and one
writer at a time."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import run_cli

from pyramid import Pyramid


def _folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# A\n\nThe ferry leaves at seven.")
    (docs / "b.md").write_text("# B\n\nThe bakery opens at six.")
    (docs / "sub" / "c.txt").write_text("The lighthouse was painted red.")
    return docs


def test_sync_adds_updates_and_removes(fresh_dsn: str, tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    with Pyramid.open(dsn=fresh_dsn) as kp:
        first = kp.sync([docs])
        assert first.counts()["added"] == 3
        (docs / "a.md").write_text("# A\n\nThe ferry now leaves at eight.")
        (docs / "sub" / "c.txt").unlink()
        (docs / "d.md").write_text("# D\n\nThe harbor has a new crane.")
        second = kp.sync([docs])
        assert second.counts() == {
            "added": 1,
            "updated": 1,
            "distilled": 0,
            "unchanged": 1,
            "removed": 1,
            "failed": 0,
        }
        removed = second.removed[0]
        assert removed.source.endswith("sub/c.txt") and removed.reason
        assert sorted(Path(d.source).name for d in kp.documents()) == ["a.md", "b.md", "d.md"]


def test_no_prune_keeps_documents_of_deleted_files(fresh_dsn: str, tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    with Pyramid.open(dsn=fresh_dsn) as kp:
        kp.sync([docs])
        (docs / "b.md").unlink()
        report = kp.sync([docs], prune=False)
        assert report.counts()["removed"] == 0
        assert len(kp.documents()) == 3


def test_a_missing_root_removes_nothing(fresh_dsn: str, tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    with Pyramid.open(dsn=fresh_dsn) as kp:
        kp.sync([docs])
        moved = tmp_path / "unmounted"
        docs.rename(moved)  # the share is gone for tonight's run
        report = kp.sync([docs])
        assert report.counts()["removed"] == 0
        assert report.counts()["failed"] == 1 and "does not exist" in (report.failed[0].reason or "")
        assert len(kp.documents()) == 3


def test_excluded_files_are_not_removed(fresh_dsn: str, tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    with Pyramid.open(dsn=fresh_dsn) as kp:
        kp.sync([docs])
        report = kp.sync([docs], exclude=["sub/**"])
        assert report.counts()["removed"] == 0
        assert len(kp.documents()) == 3


def test_dry_run_lists_what_would_be_removed(fresh_dsn: str, tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    with Pyramid.open(dsn=fresh_dsn) as kp:
        kp.sync([docs])
        (docs / "b.md").unlink()
        report = kp.sync([docs], dry_run=True)
        assert [Path(r.source).name for r in report.removed] == ["b.md"]
        assert len(kp.documents()) == 3


def test_a_second_writer_waits_or_gives_up(fresh_dsn: str, tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    held = threading.Event()
    release = threading.Event()
    with Pyramid.open(dsn=fresh_dsn) as kp:

        async def hold() -> None:
            async with kp.runtime.db.writer_lock(wait=0):
                held.set()
                while not release.is_set():
                    import asyncio

                    await asyncio.sleep(0.05)

        holder = threading.Thread(target=lambda: kp.run(hold()))
        holder.start()
        try:
            assert held.wait(10)
            busy = run_cli("sync", str(docs), "--wait", "1", dsn=fresh_dsn)
            assert busy.returncode == 75, busy.stderr
            assert "another ingest or sync" in busy.stderr
            assert kp.documents() == []  # nothing was written by the refused run
        finally:
            release.set()
            holder.join()
    done = run_cli("sync", str(docs), "--json", dsn=fresh_dsn)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["added"] == 3


@pytest.mark.parametrize("flag", ["--no-prune", "--prune"])
def test_cli_sync_json_report(fresh_dsn: str, tmp_path: Path, flag: str) -> None:
    docs = _folder(tmp_path)
    assert run_cli("sync", str(docs), dsn=fresh_dsn).returncode == 0
    (docs / "a.md").unlink()
    done = run_cli("sync", str(docs), flag, "--json", dsn=fresh_dsn)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)["counts"]
    assert counts["removed"] == (1 if flag == "--prune" else 0)
    assert counts["unchanged"] == 2
