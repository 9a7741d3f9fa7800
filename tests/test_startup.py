"""`pyramid --help` must be instant: importing the CLI loads none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, run_cli

HEAVY = [
    "torch",
    "sentence_transformers",
    "pydantic_ai",
    "markitdown",
    "psycopg",
    "numpy",
    "faiss",
    "transformers",
    # the web server: only `pyramid serve` loads it
    "fastapi",
    "starlette",
    "uvicorn",
    "onnxruntime",
    "tokenizers",
]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = (
        "import sys, pyramid.cli, pyramid\n"
        f"heavy = {HEAVY!r}\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "", f"imported at start-up: {done.stdout.strip()}"


def test_help_lists_every_command() -> None:
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    assert "--embedding-backend" in done.stdout
    for command in ("ingest", "ls", "show", "db", "reembed", "remember", "stats", "serve"):
        assert command in done.stdout


def test_every_command_has_help_text() -> None:
    from typer.main import get_command

    from pyramid.cli import app

    group = get_command(app)
    missing = []

    def walk(command, path):  # type: ignore[no-untyped-def]
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        elif not (command.help or "").strip():
            missing.append(" ".join(path))

    walk(group, [])
    assert not missing, f"commands without help: {missing}"


def test_unknown_option_is_a_usage_error() -> None:
    done = run_cli("ls", "--no-such-option")
    assert done.returncode == 2
    assert "No such option" in done.stderr


def test_version() -> None:
    from pyramid import __version__

    done = run_cli("--version")
    assert done.returncode == 0
    assert __version__ in done.stdout
