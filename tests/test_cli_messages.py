"""One-line messages and the right exit code for the mistakes a newcomer makes first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
from conftest import run_cli

from pyramid.discover import URL_REASON, discover
from pyramid.models import DocumentStatus


@pytest.mark.unit
def test_unknown_status_is_a_usage_error_listing_the_statuses() -> None:
    done = run_cli("ls", "--status", "bogus", env={"PYRAMID_DSN": "nonsense"})
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.replace("│", " ").split())
    statuses = ", ".join(get_args(DocumentStatus))
    assert statuses in text
    assert "No documents yet" not in done.stdout


@pytest.mark.unit
def test_a_typo_in_the_dsn_is_a_database_error_not_a_bug() -> None:
    done = run_cli("ls", "--dsn", "postgresq://localhost/x")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: not a usable PostgreSQL URL")
    assert "This is a bug" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.unit
def test_a_refused_connection_is_one_line() -> None:
    done = run_cli("ls", "--dsn", "postgresql://127.0.0.1:1/x")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot connect to PostgreSQL")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.unit
def test_discovery_names_a_url_as_a_url() -> None:
    found = discover(["https://example.com/report.pdf"])
    assert found.files == []
    assert [(p.path, p.reason) for p in found.problems] == [("https://example.com/report.pdf", URL_REASON)]


def test_ingest_of_a_url_says_download_it_first(fresh_dsn: str) -> None:
    done = run_cli("ingest", "https://example.com/report.pdf", "--json", dsn=fresh_dsn)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    failed = [r for r in report["results"] if r["outcome"] == "failed"]
    assert [(r["source"], r["reason"]) for r in failed] == [("https://example.com/report.pdf", URL_REASON)]


def test_reembed_with_a_missing_model_exits_2(fresh_dsn: str) -> None:
    done = run_cli("reembed", "--embedding-model", "/nope/no-such-model", dsn=fresh_dsn)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Error: cannot load embedding model '/nope/no-such-model'")
    assert "Traceback" not in done.stderr


def _two_docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha\n\nThe alpha team builds robots. They test them weekly.\n")
    (folder / "b.md").write_text("# Beta\n\nThe beta team writes manuals. Manuals ship in March.\n")
    return folder


def test_distilling_pages_only_documents_reports_distilled(fresh_dsn: str, tmp_path: Path) -> None:
    folder = _two_docs(tmp_path)
    first = json.loads(run_cli("ingest", str(folder), "--no-distill", "--json", dsn=fresh_dsn).stdout)
    assert first["counts"]["added"] == 2
    second = run_cli("ingest", str(folder), "--json", dsn=fresh_dsn)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["counts"]["distilled"] == 2
    assert report["counts"]["updated"] == 0
    # Wall-clock per stage: no stage took longer than the run.
    assert report["timings"], report
    assert all(seconds <= report["elapsed"] + 0.05 for seconds in report["timings"].values()), report
    third = json.loads(run_cli("ingest", str(folder), "--json", dsn=fresh_dsn).stdout)
    assert third["counts"]["unchanged"] == 2
    for result in third["results"]:
        assert "title" not in result, result
        assert "pages" not in result, result


def test_search_levels_and_stop_words_as_documented(fresh_dsn: str, tmp_path: Path) -> None:
    folder = _two_docs(tmp_path)
    assert run_cli("ingest", str(folder), "--json", dsn=fresh_dsn).returncode == 0

    def search(*args: str) -> list[dict]:
        done = run_cli("search", *args, "--json", dsn=fresh_dsn)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    hits = search("robots manuals", "-l", "insight,concept")
    assert hits
    assert {hit["level"] for hit in hits} <= {"insight", "concept"}
    assert search("robots manuals", "-l", "insight", "--level", "concept") == hits
    # Stop-words only: no BM25 terms; hybrid ranks by the vector leg alone (README, Search).
    assert search("the of and", "--mode", "bm25") == []
    hybrid = search("the of and")
    assert hybrid
    assert all(hit["bm25"] is None for hit in hybrid)


def _broken_app(**_: object) -> None:
    raise RuntimeError("boom")


@pytest.mark.unit
def test_a_bug_is_one_line_under_pytest_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI behaves the same whoever runs it: only PYRAMID_RAISE_ERRORS shows the traceback.
    import pyramid.cli as cli

    monkeypatch.setattr(cli, "app", _broken_app)
    monkeypatch.delenv("PYRAMID_RAISE_ERRORS", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["ls"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "unexpected RuntimeError: boom" in err
    assert "PYRAMID_RAISE_ERRORS=1" in err


@pytest.mark.unit
def test_pyramid_raise_errors_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyramid.cli as cli

    monkeypatch.setattr(cli, "app", _broken_app)
    monkeypatch.setenv("PYRAMID_RAISE_ERRORS", "1")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["ls"])
