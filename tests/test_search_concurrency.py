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
            async with kp._rt.db.connection() as conn, conn.transaction():
                for i in range(3):
                    await upsert_document(conn, record(f"/shared/{i}.md"))

        kp._portal.call(shared_documents())
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    script = str(ROOT / "tests" / "bm25_writer.py")
    procs = [subprocess.Popen([sys.executable, script, fresh_dsn, "write", str(seed)], env=env,
                              stderr=subprocess.PIPE, text=True) for seed in range(4)]
    procs.append(subprocess.Popen([sys.executable, script, fresh_dsn, "compact", "60"], env=env,
                                  stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        (items,) = conn.execute("SELECT count(*) FROM items").fetchone()
        (levels,) = conn.execute("SELECT count(*) FROM bm25_levels").fetchone()
        assert items > 50 and levels > 0  # the writers wrote, and the compactor folded some deltas
        assert_statistics_exact(conn)
        conn.execute("SELECT pyramid_bm25_compact()")
        assert_statistics_exact(conn)
