"""Distillation: the levels above pages (insights, concepts, abstract) for each document, and
recollections for the corpus. Two distillers share one interface (``base.Distiller``):

- ``LLMDistiller`` (``pyramid.distill.llm``): PydanticAI agents with any model;
- ``ExtractiveDistiller`` (``pyramid.distill.extractive``): no LLM, no network — the default.

``make_distiller`` picks one from what the caller and the settings say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Settings
    from .base import Distiller

# Names that ask for the extractive distiller even when PYRAMID_MODEL names a model.
EXTRACTIVE_NAMES = frozenset({"extractive", "none", "offline"})


def make_distiller(
    settings: Settings, model: Any = None, *, concurrency: int | None = None, resolve: bool = True
) -> Distiller:
    """The distiller for ``model``: a PydanticAI model string or ``Model`` instance, else
    ``settings.model``; none (or "extractive") gives the extractive distiller. ``resolve=False``
    (a dry run) builds the LLM distiller without creating a client, so a missing API key does not
    stop an estimate."""
    spec = model if model is not None else settings.model
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in EXTRACTIVE_NAMES):
        from .extractive import ExtractiveDistiller

        return ExtractiveDistiller(settings)
    if isinstance(spec, str) and not spec.strip():
        raise ConfigError("the model name is empty")
    from .llm import LLMDistiller

    return LLMDistiller(settings, spec, concurrency=concurrency or settings.concurrency, resolve=resolve)
