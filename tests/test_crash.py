"""Crash safety: `pyramid sync` killed with SIGKILL at every kind of point — between documents,
inside a document's transaction, between the documents and the recollections, during pruning —
leaves either the old or the new version of every document, and the next run ends in exactly the
state of an uninterrupted run (same documents, items, provenance; no duplicates; BM25 statistics
equal to a recomputation)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import ROOT
from search_helpers import assert_statistics_exact

from pyramid import Pyramid

SETTINGS = {"page_chars": 300, "convert_workers": 1, "concurrency": 1}
TOPIC = "The harbor crane lifts containers from the ferry. The crane operator checks the steel cable daily."


def _write_v1(root: Path) -> None:
    root.mkdir()
    sections = [
        f"## Part {i}\n\nPart {i} of the manual. {TOPIC} Crane {i} lifts {i * 7} tons." for i in range(1, 5)
    ]
    (root / "manual.md").write_text("# Crane manual\n\n" + "\n\n".join(sections))
    (root / "ferry.md").write_text(f"# Ferry\n\nThe ferry leaves at seven. {TOPIC}")
    (root / "notes.txt").write_text(f"Meeting notes. The crane operator asked for a new cable. {TOPIC}")
    (root / "old.md").write_text(f"# Old\n\nThe old pier closed in May. {TOPIC}")
    (root / "bakery.md").write_text("# Bakery\n\nThe island bakery opens at six and sells rye bread.")


def _write_v2(root: Path) -> None:
    manual = (root / "manual.md").read_text().replace("Crane 2 lifts 14 tons.", "Crane 2 now lifts 20 tons.")
    (root / "manual.md").write_text(manual)
    (root / "notes.txt").write_text(f"Meeting notes. The cable was replaced on Monday. {TOPIC}")
    (root / "old.md").unlink()
    (root / "lighthouse.md").write_text(f"# Lighthouse\n\nThe lighthouse crane was painted red. {TOPIC}")
    (root / "tides.txt").write_text("Tide tables: high water at noon, low water at six in the evening.")


def _clone(server: str, template: str) -> str:
    name = f"crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return server.replace("/postgres?", f"/{name}?", 1)


def _drop(server: str, dsn: str) -> None:
    name = dsn.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sync_cli(dsn: str, root: Path, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYRAMID_DSN": dsn, **extra_env}
    env.update({f"PYRAMID_{key.upper()}": str(value) for key, value in SETTINGS.items()})
    return subprocess.run(
        [sys.executable, "-m", "pyramid", "sync", str(root), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _sync(dsn: str, root: Path) -> None:
    with Pyramid.open(dsn=dsn, **SETTINGS) as kp:
        report = kp.sync([root])
    assert report.ok, report.failed


def snapshot(dsn: str) -> dict[str, Any]:
    """Everything a user can see, without ids (which differ between runs)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        documents = conn.execute(
            "SELECT source, sha256, file_sha256, status, title, page_count, format, error, distiller"
            " FROM documents ORDER BY source"
        ).fetchall()
        items = conn.execute(
            "SELECT coalesce(d.source, ''), i.level, i.ordinal, coalesce(i.title, ''), i.text, i.pages,"
            " i.distiller, i.stale, i.content_hash, i.embedding IS NOT NULL"
            " FROM items i LEFT JOIN documents d ON d.id = i.document_id"
        ).fetchall()
        links = conn.execute(
            "SELECT coalesce(d.source, ''), i.level, i.ordinal, i.text,"
            "       coalesce(sd.source, ''), coalesce(si.level, ''), coalesce(si.ordinal, -1),"
            "       coalesce(src_doc.source, ''), s.source_ref"
            " FROM item_sources s JOIN items i ON i.id = s.item_id"
            " LEFT JOIN documents d ON d.id = i.document_id"
            " LEFT JOIN items si ON si.id = s.source_item_id"
            " LEFT JOIN documents sd ON sd.id = si.document_id"
            " LEFT JOIN documents src_doc ON src_doc.id = s.source_document_id"
        ).fetchall()
        duplicates = conn.execute(
            "SELECT document_id, level, ordinal FROM items GROUP BY 1, 2, 3 HAVING count(*) > 1"
        ).fetchall()
        pending = conn.execute("SELECT count(*) FROM pyramid_meta WHERE key = 'corpus_changed'").fetchone()
    items = [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in items]
    return {
        "documents": documents,
        "items": sorted(Counter(items).items()),
        "links": sorted(Counter(links).items()),
        "duplicates": duplicates,
        "pending": pending,
    }


def per_document(snap: dict[str, Any]) -> dict[str, list[Any]]:
    """A document's own items (recollections are the corpus's), by source."""
    found: dict[str, list[Any]] = {}
    for (source, level, *rest), count in snap["items"]:
        if level != "recollection":
            found.setdefault(source, []).append((level, *rest, count))
    return found


@pytest.mark.slow
def test_sync_killed_anywhere_recovers_to_the_clean_state(pg_server_url: str, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    _write_v1(root)
    template = f"crash_tmpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{template}"')
    template_dsn = pg_server_url.replace("/postgres?", f"/{template}?", 1)
    created: list[str] = []
    try:
        _sync(template_dsn, root)
        before = per_document(snapshot(template_dsn))
        _write_v2(root)

        clean = _clone(pg_server_url, template)
        created.append(clean)
        _sync(clean, root)
        expected = snapshot(clean)
        after = per_document(expected)
        assert not expected["duplicates"] and expected["pending"] == (0,)
        assert any(level == "recollection" for (_, level, *_), _ in expected["items"])

        # How many crash points does one run pass? (Also the clean run's CLI equivalent.)
        counted = _clone(pg_server_url, template)
        created.append(counted)
        log = tmp_path / "points.log"
        done = _sync_cli(counted, root, {"PYRAMID_TEST_CRASH_LOG": str(log)})
        assert done.returncode == 0, done.stderr
        assert snapshot(counted) == expected
        points = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
        assert len(points) >= 20, points
        kinds = set(points)
        assert {
            "document.before-commit",
            "documents.deleted-before-commit",
            "recollections.before-commit",
            "corpus.begin",
        } <= kinds

        killed_at: list[str] = []
        for point in range(1, len(points) + 1):
            dsn = _clone(pg_server_url, template)
            created.append(dsn)
            crashed = _sync_cli(dsn, root, {"PYRAMID_TEST_CRASH_AT": str(point)})
            assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr[-2000:])
            killed_at.append(points[point - 1])
            # Right after the crash every document is wholly its old or its new version.
            for source, items in per_document(snapshot(dsn)).items():
                assert items in (before.get(source), after.get(source)), (point, points[point - 1], source)
            _sync(dsn, root)
            assert snapshot(dsn) == expected, (point, points[point - 1])
            with psycopg.connect(dsn, autocommit=True) as conn:
                assert_statistics_exact(conn)
            _drop(pg_server_url, dsn)
            created.remove(dsn)
        assert len(killed_at) >= 20
    finally:
        for dsn in created:
            _drop(pg_server_url, dsn)
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
