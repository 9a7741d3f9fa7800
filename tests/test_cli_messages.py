"""One-line messages and the right exit code for the mistakes a newcomer makes first."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from pyramid.discover import URL_REASON, discover


@pytest.mark.unit
def test_unknown_status_is_a_usage_error_listing_the_statuses() -> None:
    done = run_cli("ls", "--status", "bogus", env={"PYRAMID_DSN": "nonsense"})
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.replace("│", " ").split())
    assert "pending, converted, distilled, ready, failed" in text
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
