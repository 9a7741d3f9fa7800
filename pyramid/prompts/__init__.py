"""Prompt templates (``<name>.md``), shipped inside the package: prompts are data."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load(name: str) -> str:
    """The text of ``pyramid/prompts/<name>.md``."""
    return resources.files("pyramid.prompts").joinpath(f"{name}.md").read_text("utf-8").strip()
