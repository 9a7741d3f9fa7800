"""What the container image is built from: the wheel `pip install .` makes (the Dockerfile's install
step) carries every file of the package (SQL, prompts, the web page's assets), the Dockerfile copies
what that install needs past .dockerignore, and docker-compose.yml's workers reach its PostgreSQL.
No Docker engine runs here; these are the parts of the image that can break without one."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from conftest import ROOT


def _package_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "pyramid").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_carries_every_file_of_the_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("knowledge_pyramid-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    expected = _package_files()
    assert any(name.endswith(".sql") for name in expected) and any(name.endswith(".md") for name in expected)
    assert expected - names == set()
    assert "pyramid = pyramid.cli:main" in entry_points


def test_the_dockerfile_copies_what_its_install_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    copied = {name for sources in copies for name in sources}
    assert {"pyproject.toml", "README.md", "pyramid"} <= copied  # README: the wheel's metadata
    assert "torch==2.13.0" in dockerfile and "--index-url" in dockerfile  # CPU torch, not CUDA's
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name in sorted(_package_files() | {"pyproject.toml", "README.md"}):
        caught = [
            p for p in ignored if fnmatch.fnmatch(name, p) or fnmatch.fnmatch(name, p.rstrip("/") + "/*")
        ]
        assert not caught, (name, caught)


def test_compose_workers_build_the_image_and_reach_its_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    postgres, worker = services["postgres"], services["worker"]
    assert "pgvector" in postgres["image"]
    env = postgres["environment"]
    dsn = f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@postgres:5432/{env['POSTGRES_DB']}"
    assert worker["environment"]["PYRAMID_DSN"] == dsn
    assert worker["build"] == "." and worker["command"] == ["worker"]
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Jobs name files by path: the workers see the documents where the enqueuer (a worker container
    # too: `docker compose run --rm worker jobs add /docs`) saw them.
    assert any(volume.endswith(":/docs:ro") for volume in worker["volumes"])
