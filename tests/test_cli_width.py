"""Terminal output wraps at word boundaries at 60, 80 and 120 columns: no word is ever split."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_cli

WIDTHS = (60, 80, 120)
BOX = re.compile(r"[│┃┆┊║─━┄┈═╭╮╰╯┏┓┗┛┡┩└┘┌┐├┤┬┴┼╇╈╋╸╹╺╻]+")


def _tokens(text: str) -> set[str]:
    return set(BOX.sub(" ", text).split())


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("width") / "team-handbooks" / "engineering-and-operations"
    root.mkdir(parents=True)
    (root / "robotics-handbook-for-new-employees.md").write_text(
        "# Fernhollow Robotics Employee Handbook\n\n"
        "The warehouse robots recharge automatically between deliveries overnight. "
        "Maintenance engineers inspect every robot's articulated manipulator quarterly. "
        "Employees receive comprehensive onboarding documentation during their first week.\n\n"
        "## Safety\n\nProtective equipment is mandatory inside the fabrication workshop. "
        "Emergency procedures are rehearsed monthly with every department.\n"
    )
    (root / "quarterly-operations-report.md").write_text(
        "# Quarterly Operations Report\n\nDeliveries increased considerably during the autumn quarter. "
        "The logistics department introduced standardised packaging throughout the organisation.\n"
    )
    return root


@pytest.fixture(scope="module")
def ingested(dsn: str, folder: Path) -> str:
    done = run_cli("ingest", str(folder), dsn=dsn)
    assert done.returncode == 0, done.stderr
    return dsn


@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["show", "robotics-handbook-for-new-employees.md"],
        ["search", "robots maintenance onboarding"],
        ["ask", "Who inspects the robots?"],
        ["stats"],
    ],
    ids=lambda c: c[0],
)
def test_no_word_is_split_at_any_width(ingested: str, command: list[str]) -> None:
    wide = run_cli(*command, dsn=ingested, env={"COLUMNS": "2000"})
    assert wide.returncode == 0, wide.stderr
    words = _tokens(wide.stdout)
    for width in WIDTHS:
        done = run_cli(*command, dsn=ingested, env={"COLUMNS": str(width)})
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert max(len(line) for line in lines) <= width, (width, done.stdout)
        # Timings differ between runs ("Usage: … · 35.9 s"): numbers are not words.
        split = sorted(t for t in _tokens(done.stdout) - words if not re.fullmatch(r"[\d.,:]+", t))
        # A word cut to fit a narrow column is marked "…" (a path shortened from the left starts with
        # it); anything else new is a word split across lines.
        assert [t for t in split if "…" not in (t[0], t[-1])] == [], (width, split, done.stdout)


def test_ls_shows_paths_below_the_common_root(ingested: str, folder: Path) -> None:
    done = run_cli("ls", dsn=ingested, env={"COLUMNS": "200"})
    assert f"Sources below {folder}/" in done.stdout
    assert "quarterly-operations-report.md" in done.stdout
    assert str(folder / "quarterly-operations-report.md") not in done.stdout
    full = run_cli("ls", "--json", dsn=ingested)
    assert str(folder / "quarterly-operations-report.md") in full.stdout


@pytest.mark.unit
def test_search_joins_a_pages_lines_within_a_paragraph() -> None:
    """A PDF page's lines end mid-sentence; printed as they are, "A full charge" stood alone."""
    from pyramid.cli.search import _reflow

    page = "Power\n\nOne charge lasts a shift. A full charge\ntakes three hours.\n\n| a | b |\n| 1 | 2 |\n- one\n- two"
    assert _reflow(page) == (
        "Power\n\nOne charge lasts a shift. A full charge takes three hours.\n\n| a | b |\n| 1 | 2 |\n- one\n- two"
    )
