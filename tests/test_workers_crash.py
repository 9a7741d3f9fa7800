"""Crash safety of the queue: one of two `pyramid worker` processes SIGKILLs itself at a named
point (its claim, after a conversion, inside a document's write transaction, the corpus step, an
embed worker's batch); the other takes its work over, and the database then equals a clean single
ingest's (documents, every document's items, item and provenance counts, BM25 statistics =
recomputation)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import ROOT
from search_helpers import assert_statistics_exact
from test_crash import per_document, snapshot
from test_workers import ENV, SETTINGS, _corpus, _jobs, _levels

from pyramid import Pyramid


def _worker(dsn: str, crash_at: str | None = None, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYRAMID_DSN": dsn}
    env.update(ENV)
    if crash_at:
        env["PYRAMID_TEST_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyramid",
            "worker",
            "--drain",
            "--lease",
            "3",
            "--batch",
            "2",
            "--json",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_claim(dsn: str, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(row[1] == "running" for row in _jobs(dsn)):
            return
        time.sleep(0.1)


def _clean_snapshot(server_url: str, root: Path, name: str) -> dict[str, Any]:
    from conftest import _create_database, _drop_database

    clean = _create_database(server_url, name)
    try:
        with Pyramid.open(dsn=clean, **SETTINGS) as kp:
            assert kp.ingest([root]).ok
        return snapshot(clean)
    finally:
        _drop_database(server_url, name)


def _assert_clean(dsn: str, expected: dict[str, Any]) -> None:
    got = snapshot(dsn)
    assert got["documents"] == expected["documents"]
    mine, clean_docs = per_document(got), per_document(expected)
    for source in clean_docs:
        assert sorted(mine[source]) == sorted(clean_docs[source]), (
            source,
            sorted(set(mine[source]) ^ set(clean_docs[source])),
        )
    assert _levels(got["items"]) == _levels(expected["items"])
    assert _levels(got["links"]) == _levels(expected["links"])
    assert got["duplicates"] == [] and got["pending"] == (0,)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert_statistics_exact(conn)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["embed.claimed", "embed.before-commit"])
def test_an_embed_worker_killed_in_its_batch_leaves_it_to_the_next(
    pg_server_url: str, fresh_dsn: str, tmp_path: Path, point: str
) -> None:
    """A split fleet: a `convert,distill` worker stores the documents without vectors; an `embed`
    worker dies inside a batch's transaction; the next embed worker takes the batch at once (row
    locks, no lease) and the database equals a clean run's."""
    root = _corpus(tmp_path / "docs", 4)
    expected = _clean_snapshot(
        pg_server_url, root, f"t_clean_embed_{os.getpid()}_{point[6:].replace('-', '_')}"
    )
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        assert kp.enqueue([root]).enqueued == 4
    cpu = _worker(fresh_dsn, None, "--stages", "convert,distill")
    _, err = cpu.communicate(timeout=300)
    assert cpu.returncode == 0, err[-2000:]
    killed = _worker(fresh_dsn, point, "--stages", "embed", "--embed-batch", "8")
    killed.wait(timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.read()[-2000:] if killed.stderr else ""
    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        waiting = kp.unembedded()
    assert waiting > 0  # the killed batch was rolled back
    other = _worker(fresh_dsn, None, "--stages", "embed")
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert report["items_embedded"] == waiting and report["corpus_steps"] == 1
    _assert_clean(fresh_dsn, expected)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["job.claimed", "file.converted", "document.before-commit", "corpus.begin"])
def test_a_worker_killed_anywhere_leaves_the_clean_state(
    pg_server_url: str, fresh_dsn: str, tmp_path: Path, point: str
) -> None:
    root = _corpus(tmp_path / "docs", 5)
    name = f"t_clean_{os.getpid()}_{point.replace('.', '_').replace('-', '_')}"
    expected = _clean_snapshot(pg_server_url, root, name)

    with Pyramid.open(dsn=fresh_dsn, **SETTINGS) as kp:
        assert kp.enqueue([root]).enqueued == 5
    killed = _worker(fresh_dsn, crash_at=point)
    if point == "corpus.begin":
        killed.wait(timeout=300)  # it drains the queue alone and dies in the corpus step
    else:
        _wait_for_claim(fresh_dsn, killed)
    other = _worker(fresh_dsn)
    killed.wait(timeout=300)
    out, err = other.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, (
        killed.returncode,
        killed.stderr.read()[-2000:] if killed.stderr else "",
    )
    assert other.returncode == 0, err[-2000:]

    _assert_clean(fresh_dsn, expected)
    rows = _jobs(fresh_dsn)
    assert {row[1] for row in rows} == {"done"}
    if point != "corpus.begin":  # the killed worker's jobs were taken over after its lease expired
        assert any(row[2] == 2 for row in rows), rows
