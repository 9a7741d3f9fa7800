"""Every command's --help: no Python type names, defaults read from Settings, one meaning per flag."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from conftest import run_cli
from typer.main import get_command
from typer.testing import CliRunner

from pyramid.cli import app
from pyramid.cli.common import split_levels
from pyramid.config import Settings

pytestmark = pytest.mark.unit

TYPE_NAME = re.compile(r"<(bool|str|int|float|path|list\[[^\]]*\])[^>]*>|\{[a-z_]+\}")


def _commands() -> list[list[str]]:
    found: list[list[str]] = [[]]

    def walk(command: click.Command, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return found


COMMANDS = _commands()


def _help(path: list[str], width: int = 100) -> str:
    done = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": str(width)}, terminal_width=width)
    assert done.exit_code == 0, done.output
    return done.output


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"ingest", "search", "ask", "db status", "reembed", "ls", "show", "mcp"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "pyramid")
def test_help_shows_no_python_type_names(path: list[str]) -> None:
    text = _help(path)
    assert TYPE_NAME.search(text) is None, TYPE_NAME.search(text)
    assert "Usage: pyramid" in text


def test_command_lists_join_docstring_lines() -> None:
    """A command's description in the list is its docstring's first paragraph, wrapped by the
    terminal, not broken where the docstring's lines end (doctor's broke after "a tool")."""
    for path in COMMANDS:
        command = get_command(app)
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        for name, sub in getattr(command, "commands", {}).items():
            first = (sub.help or "").split("\n\n")[0]
            assert sub.short_help == " ".join(first.split()), (path, name)
    listing = _help([], width=200)
    doctor = next(line for line in listing.splitlines() if "│ doctor" in line)
    assert "a tool call, a cited answer" in doctor


def test_a_commands_help_is_wrapped_by_the_terminal_not_by_its_docstring() -> None:
    """`worker --help` broke its description where the docstring's lines end ("every job this" /
    "worker took"); at 200 columns each paragraph is one line."""
    worker = _help(["worker"], width=200).splitlines()
    assert any("Exit code 0: every job this worker took is done; 1: some failed" in line for line in worker)
    lines = _help(["sync"], width=200).splitlines()
    assert any("a missing root (e.g. an unmounted share) removes nothing" in line for line in lines)


def test_help_defaults_come_from_the_settings() -> None:
    defaults = Settings.model_fields
    search = " ".join(_help(["search"], width=200).split())
    assert f"(default {defaults['fusion'].default})" in search
    assert "rrf (default)" not in search
    assert f"(default {defaults['search_k'].default})" in search
    ask = " ".join(_help(["ask"], width=200).split())
    assert f"(default {defaults['ask_token_limit'].default:,})" in ask


def test_dash_m_means_model_everywhere() -> None:
    for path in COMMANDS:
        for line in _help(path, width=200).splitlines():
            if re.search(r"\s-m\s", line):
                assert "--model" in line, (path, line)


def test_level_option_is_the_same_on_search_and_ask() -> None:
    for path in (["search"], ["ask"]):
        text = _help(path, width=200)
        assert "--level,--levels" in text
        assert "comma-separated or repeated" in text


def test_one_level_parser() -> None:
    assert split_levels(["insight,concept"]) == ["insight", "concept"]
    assert split_levels(["insight", "concept"]) == ["insight", "concept"]
    assert split_levels(["insight, concept", "page"]) == ["insight", "concept", "page"]
    assert split_levels(None) is None
    assert split_levels([" , "]) is None


def test_global_options_after_a_group_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    for args in (
        ["db", "--data-dir", str(data_dir), "status", "--json"],
        ["--data-dir", str(data_dir), "db", "status", "--json"],
        ["db", "status", "--data-dir", str(data_dir), "--json"],
    ):
        done = run_cli(*args, env={"PYRAMID_DSN": ""})
        assert done.returncode == 0, (args, done.stderr)
        info = json.loads(done.stdout)
        assert info["external"] is False
        assert str(data_dir) in json.dumps(info), (args, info)
