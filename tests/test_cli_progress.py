"""Progress on every long step, on a terminal only: a line per document within a long file, a
spinner naming the stage of search and ask start-up, items in reembed; never in a pipe or with --json."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from conftest import run_cli
from rich.console import Console

from pyramid import Pyramid
from pyramid.cli.ingest import IngestProgress
from pyramid.runtime import ProgressEvent

# Rich's own switches for "this is a terminal" (stderr is a pipe under the test runner).
TERMINAL = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "CI": "", "COLUMNS": "120"}


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, force_interactive=True, width=120), buffer


@pytest.mark.unit
def test_a_long_file_shows_its_steps_below_the_files_bar() -> None:
    console, buffer = _console()
    with IngestProgress(enabled=True, console=console, step_after=0) as progress:
        progress(ProgressEvent("start", total=1))
        progress(ProgressEvent("file", path="/data/big.pdf"))
        progress(
            ProgressEvent("step", path="/data/big.pdf", message="embedding pages", files_done=40, total=90)
        )
        assert progress._progress is not None
        progress._progress.refresh()
        shown = buffer.getvalue()
        assert "big.pdf: embedding pages" in shown and "40/90" in shown and "0/1" in shown
        progress(ProgressEvent("result", path="/data/big.pdf"))
        progress(ProgressEvent("done", path="/data/big.pdf", files_done=1))
        assert len(progress._progress.tasks) == 1  # the document's line goes when it is done


@pytest.mark.unit
def test_no_progress_without_a_terminal() -> None:
    console, buffer = _console()
    with IngestProgress(enabled=False, console=console) as progress:
        progress(ProgressEvent("start", total=1))
        progress(
            ProgressEvent("step", path="/data/big.pdf", message="embedding pages", files_done=4, total=9)
        )
    assert buffer.getvalue() == ""


def test_ingest_reports_steps_within_a_document(fresh_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "long.md"
    sections = [
        f"## Part {n}\n\n"
        + " ".join(f"Robot {n}-{i} picked {i * 7 + n} apples on day {i}." for i in range(30))
        for n in range(10)
    ]
    path.write_text("# Long report\n\n" + "\n\n".join(sections))
    events: list[ProgressEvent] = []
    with Pyramid.open(dsn=fresh_dsn, progress=events.append) as kp:
        assert kp.ingest([path]).ok
    steps = [(e.message, e.files_done, e.total) for e in events if e.kind == "step" and e.path == str(path)]
    assert ("converting", 0, 0) in steps
    pages = [(done, total) for what, done, total in steps if what == "embedding pages"]
    assert pages and pages[-1][0] == pages[-1][1] > 1
    sentences = [(done, total) for what, done, total in steps if what == "embedding sentences"]
    assert len(sentences) >= 2, steps  # 300 sentences: several chunks, each reported
    assert [done for done, _ in sentences] == sorted(done for done, _ in sentences)
    assert sentences[-1][0] == sentences[-1][1] >= 300


def test_progress_on_a_terminal_only_and_never_with_json(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("# Orchard\n\nThe picker robot works in the orchard at night.")
    shown = run_cli("ingest", str(path), dsn=dsn, env=TERMINAL)
    assert shown.returncode == 0, shown.stderr
    assert "Ingesting" in shown.stderr and "1/1" in shown.stderr
    searched = run_cli("search", "picker robot", dsn=dsn, env=TERMINAL)
    assert searched.returncode == 0, searched.stderr
    assert "Searching…" in searched.stderr  # the stage spinner; earlier stages may pass unseen
    asked = run_cli("ask", "Where does the picker robot work?", dsn=dsn, env=TERMINAL)
    assert asked.returncode == 0, asked.stderr
    assert "Searching…" in asked.stderr
    # With --json, or without a terminal, stderr carries no progress at all.
    for args, env in (
        (["search", "picker robot", "--json"], TERMINAL),
        (["ask", "Where does the picker robot work?", "--json"], TERMINAL),
        (["search", "picker robot"], {}),
        (["ingest", str(path), "--force", "--json"], TERMINAL),
        (["ingest", str(path), "--force"], {}),
    ):
        done = run_cli(*args, dsn=dsn, env=env)
        assert done.returncode == 0, done.stderr
        assert "…" not in done.stderr and "Ingesting" not in done.stderr and "\x1b" not in done.stderr, args


def test_reembed_shows_its_items_on_a_terminal(fresh_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text("# Orchard\n\nThe picker robot works in the orchard at night.")
    with Pyramid.open(dsn=fresh_dsn) as kp:
        assert kp.ingest([path], distill=False).ok
    done = run_cli("reembed", dsn=fresh_dsn, env=TERMINAL)
    assert done.returncode == 0, done.stderr
    assert "Re-embedding" in done.stderr and "items" in done.stderr
    quiet = run_cli("reembed", dsn=fresh_dsn)
    assert quiet.returncode == 0 and "Re-embedding" not in quiet.stderr


def test_the_encoder_loads_while_the_pyramid_opens(dsn: str) -> None:
    """search and ask open with warm_encoder: the model loads on the encoder's thread during the
    open, so the query's first encode does not pay for it afterwards."""
    with Pyramid.open(dsn=dsn) as cold:
        assert not cold.runtime.embedder.loaded
    with Pyramid.open(dsn=dsn, warm_encoder=True) as kp:
        embedder = kp.runtime.embedder
        embedder._thread().submit(lambda: None).result()  # queued behind the load on the one thread
        assert embedder.loaded
