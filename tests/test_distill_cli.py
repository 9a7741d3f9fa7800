"""The distillation commands as a user runs them: ingest --model/--concurrency/--dry-run, show,
remember, stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-docs")
    (root / "otter.md").write_text(
        "# Otters\n\nSea otters use stones to open shells. They live along the Pacific coast.\n\n"
        "## Food\n\n- sea urchins\n- crabs and clams\n"
    )
    (root / "beaver.md").write_text(
        "# Beavers\n\nBeavers build dams from branches and mud. Their dams create ponds for fish.\n"
    )
    return root


def test_dry_run_estimates_tokens_and_price_and_writes_nothing(dsn: str, folder: Path) -> None:
    done = run_cli("ingest", str(folder), "--dry-run", "--model", "openai:gpt-4.1-mini", "--json", dsn=dsn)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dry_run"] and summary["distiller"] == "openai:gpt-4.1-mini"
    assert summary["usage"]["input_tokens"] > 0 and summary["price"] > 0
    assert all(r["usage"]["requests"] > 0 for r in summary["results"])
    text = run_cli("ingest", str(folder), "--dry-run", "--model", "openai:gpt-4.1-mini", dsn=dsn)
    assert "Estimated LLM usage" in text.stdout and "$" in text.stdout
    listed = run_cli("ls", "--json", dsn=dsn)
    assert json.loads(listed.stdout) == []


def test_bad_model_and_concurrency_are_usage_errors(dsn: str, folder: Path) -> None:
    done = run_cli("ingest", str(folder), "--model", "nosuchprovider:model-x", dsn=dsn)
    assert done.returncode == 2
    assert done.stderr.startswith("Error:") and "nosuchprovider:model-x" in done.stderr
    done = run_cli("ingest", str(folder), "--concurrency", "0", dsn=dsn)
    assert done.returncode == 2


def test_ingest_show_remember_stats(dsn: str, folder: Path) -> None:
    done = run_cli("ingest", str(folder), "--concurrency", "2", dsn=dsn)
    assert done.returncode == 0, done.stderr
    assert "Distiller: extractive" in done.stdout
    shown = run_cli("show", "otter.md", "--no-pages", dsn=dsn)
    assert shown.returncode == 0, shown.stderr
    assert "distiller: extractive" in shown.stdout
    assert "Sea otters use stones to open shells." in shown.stdout
    assert "Otters, Food: Sea urchins." in shown.stdout  # a list item with its context
    remembered = run_cli(
        "remember",
        "Otters and beavers both shape their coasts.",
        "--source",
        "otter.md",
        "--source",
        "beaver.md",
        "--json",
        dsn=dsn,
    )
    assert remembered.returncode == 0, remembered.stderr
    assert json.loads(remembered.stdout)["distiller"] == "user"
    assert "Otters and beavers both shape" in run_cli("show", "beaver.md", "--no-pages", dsn=dsn).stdout
    stats = json.loads(run_cli("stats", "--json", dsn=dsn).stdout)
    assert stats["items"]["page"] >= 2 and stats["items"]["insight"] >= 4 and stats["items"]["abstract"] == 2
    assert stats["distillers"]["recollection"]["user"] == 1
    assert stats["usage"]["requests"] == 0  # the extractive distiller spends no tokens
    table = run_cli("stats", dsn=dsn)
    assert "Items per level" in table.stdout and "No LLM tokens spent yet" in table.stdout
    missing = run_cli("remember", "About nothing.", "--source", "no-such-doc.md", dsn=dsn)
    assert missing.returncode == 2 and "no document matches" in missing.stderr
