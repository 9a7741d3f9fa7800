"""Several processes inserting, replacing and deleting at once, with a compactor running beside
them, leave BM25 statistics and postings equal to a recomputation from scratch."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from conftest import ROOT
from search_helpers import assert_statistics_exact, record


def test_concurrent_writers_leave_exact_statistics(fresh_dsn: str) -> None:
    from pyramid import Pyramid
    from pyramid.store import upsert_document

    with Pyramid.open(dsn=fresh_dsn) as kp:

        async def shared_documents() -> None:
            async with kp.runtime.db.connection() as conn, conn.transaction():
                for i in range(3):
                    await upsert_document(conn, record(f"/shared/{i}.md"))

        kp.run(shared_documents())
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    script = str(ROOT / "tests" / "bm25_writer.py")
    compactor = subprocess.Popen(
        [sys.executable, script, fresh_dsn, "compact"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, script, fresh_dsn, "write", str(seed)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(4)
    ]
    for proc in writers:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
    compactor.terminate()  # possibly in the middle of a compaction: it must roll back cleanly
    folds, _ = compactor.communicate(timeout=60)
    assert folds.split(), "the compactor never folded anything while the writers ran"
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        (items,) = conn.execute("SELECT count(*) FROM items").fetchone()
        assert items > 50
        assert_statistics_exact(conn)
        conn.execute("SELECT pyramid_bm25_compact()")
        assert_statistics_exact(conn)
