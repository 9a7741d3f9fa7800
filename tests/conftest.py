"""Shared fixtures: one embedded PostgreSQL for the whole run, a fresh database per test module,
the real bundled embedding model, and no model requests ever."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Tests never reach a model over the network; pydantic-ai raises if anything tries.
import pydantic_ai.models
import pytest

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False

ROOT = Path(__file__).resolve().parent.parent

# Nothing a test runs may read the developer's own configuration; the knobs of the test suite itself
# (not settings of the library) stay.
SUITE_KNOBS = {
    "PYRAMID_TEST_DATA_DIR",
    "PYRAMID_RECORD_CASSETTES",
    "PYRAMID_REAL_MODEL_MODES",
    "PYRAMID_LLAMA_CACHE",
}
for _name in [n for n in os.environ if n.startswith("PYRAMID_") and n not in SUITE_KNOBS]:
    os.environ.pop(_name)
os.environ["PYRAMID_CONFIG"] = str(ROOT / "tests" / "no-such-pyramid.toml")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The suite runs on the default encoder (auto: int8 ONNX on a CPU), exported once per checkout into
# pytest's own cache folder rather than the developer's data dir; tests about torch versus onnx
# choose their backend explicitly.
os.environ["PYRAMID_ENCODER_CACHE_DIR"] = str(ROOT / ".pytest_cache" / "encoders")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, like the library."""
    return "asyncio"


@pytest.fixture(scope="session")
def pg_data_dir() -> Iterator[Path]:
    """The data dir of the embedded server every test module shares (stopped at the end).

    Not under pytest's basetemp: pytest deletes old basetemps of the same user, which would pull
    the data dir from under the server of another pytest run going on at the same time.
    """
    from pyramid.store.database import start_embedded, stop_embedded

    given = os.environ.get("PYRAMID_TEST_DATA_DIR")
    data_dir = Path(given) if given else Path(tempfile.mkdtemp(prefix="pyramid-test-pg-"))
    start_embedded(data_dir)
    yield data_dir
    if not given:
        stop_embedded(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(pg_data_dir: Path) -> str:
    from pyramid.store.database import start_embedded

    return start_embedded(pg_data_dir).replace("/pyramid?", "/postgres?", 1)


def _create_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("/postgres?", f"/{name}?", 1)


def _drop_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def dsn(pg_server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test module, dropped afterwards."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    name = f"t_{module}_{uuid.uuid4().hex[:8]}".lower()
    url = _create_database(pg_server_url, name)
    yield url
    _drop_database(pg_server_url, name)


@pytest.fixture
def fresh_dsn(pg_server_url: str) -> Iterator[str]:
    """A fresh database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = _create_database(pg_server_url, name)
    yield url
    _drop_database(pg_server_url, name)


@pytest.fixture(scope="module")
def kp(dsn: str):  # type: ignore[no-untyped-def]
    """A Pyramid on this module's database."""
    from pyramid import Pyramid

    with Pyramid.open(dsn=dsn) as pyramid:
        yield pyramid


def run_cli(
    *args: str,
    dsn: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``pyramid`` CLI in a subprocess (as a user would)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("PYRAMID_RAISE_ERRORS", None)
    if dsn is not None:
        full_env["PYRAMID_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "pyramid", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=timeout,
    )
