"""Ctrl-C during an ingest: one `Interrupted.` line, exit 130 at once, and a consistent database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, run_cli


def test_sigint_during_ingest_exits_at_once_and_leaves_a_consistent_state(
    fresh_dsn: str, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(24):
        (folder / f"note{n:02}.md").write_text(
            f"# Note {n}\n\nThe team {n} builds robot {n}. It ships in March {2030 + n}. "
            f"Robot {n} carries {n} boxes. The warehouse {n} opens at six.\n"
        )
    log = tmp_path / "points.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYRAMID_DSN": fresh_dsn,
        "PYRAMID_TEST_CRASH_LOG": str(log),
    }
    env.pop("PYRAMID_RAISE_ERRORS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyramid", "ingest", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 240
        # Interrupt in the middle: once the first document is committed.
        while time.monotonic() < deadline and proc.poll() is None:
            if log.exists() and "document.committed" in log.read_text():
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the ingest finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "Interrupted.", stderr
    assert "Task was destroyed" not in stderr
    assert "Traceback" not in stderr
    assert took < 5, f"took {took:.1f} s to exit after SIGINT (busy machine allowance: 5 s)"
    # The next run finishes the job: every file ends ready, none twice.
    again = run_cli("ingest", str(folder), "--json", dsn=fresh_dsn)
    assert again.returncode == 0, again.stderr
    docs = json.loads(run_cli("ls", "--json", dsn=fresh_dsn).stdout)
    assert sorted(Path(d["source"]).name for d in docs) == sorted(f"note{n:02}.md" for n in range(24))
    assert {d["status"] for d in docs} == {"ready"}
