"""The README's module map (the ``pyramid/`` tree under Development) names what the package holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pyramid"

pytestmark = pytest.mark.unit


def _module_map() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    start = readme.index("pyramid/            the library")
    return readme[start : readme.index("```", start)]


def test_the_module_map_lists_every_top_level_module_and_folder_and_nothing_else() -> None:
    listed = set(re.findall(r"^  (\S+)", _module_map(), re.MULTILINE))
    real = {
        p.name + ("/" if p.is_dir() else "")
        for p in PACKAGE.iterdir()
        if p.name not in {"__pycache__", "__init__.py", "__main__.py"} and (p.is_dir() or p.suffix == ".py")
    }
    assert sorted(real - listed) == [], "in pyramid/ but not in the README's module map"
    assert sorted(listed - real) == [], "in the README's module map but not in pyramid/"


@pytest.mark.parametrize("folder", ["store", "search", "text", "agents"])
def test_the_module_map_names_every_module_of(folder: str) -> None:
    described = _module_map()
    modules = sorted(p.name for p in (PACKAGE / folder).glob("*.py") if p.name != "__init__.py")
    assert [m for m in modules if m not in described] == []
