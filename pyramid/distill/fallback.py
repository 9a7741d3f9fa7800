"""The extractive method applied to a model's insights: what a document gets for a concept or
abstract step whose model calls failed (the insights the model wrote are kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .extractive import _abstract, _concepts, _Insight

if TYPE_CHECKING:
    import numpy as np

    from ..config import Settings


def _as_insights(texts: Sequence[str]) -> list[_Insight]:
    return [_Insight(text, [], [], "sentence", "", row) for row, text in enumerate(texts)]


def extractive_concepts(
    texts: Sequence[str], vectors: np.ndarray, settings: Settings
) -> list[tuple[str, str, list[int]]]:
    """(name, description, insight ordinals from 1) of clusters of the insights' embeddings."""
    found = _concepts(_as_insights(texts), vectors, settings)
    return [(c.name, c.description, [m + 1 for m in c.members]) for c in found]


def extractive_abstract(texts: Sequence[str], vectors: np.ndarray, words: int) -> tuple[str, list[int]]:
    """The central, non-redundant insights within ``words``, and their ordinals (from 1)."""
    text, picked = _abstract(_as_insights(texts), vectors, words)
    return text, [i + 1 for i in picked]
