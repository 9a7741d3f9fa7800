"""Cross-encoder reranking (sentence-transformers ``CrossEncoder``), by model name or local path: which
reranker a search uses (``resolve_reranker``), loading it, and scoring with it.

The model is loaded once per process and device (CUDA when available) and run off the event loop.
No reranker weights ship on PyPI: a name is fetched from the model hub by sentence-transformers,
a path is loaded as it is.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SearchError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from .hybrid import Hit

# A real, small cross-encoder; used when rerank is asked for without naming one (needs the hub or
# a local copy under this name).
DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"

_LOADED: dict[tuple[str, str], CrossEncoder] = {}
_LOCK = threading.Lock()


def resolve_reranker(rerank: bool | str | None, configured: str | None) -> str | None:
    """The cross-encoder to use: a name given here, else the configured one when rerank is True or
    not said (None), else nothing (False)."""
    if rerank is False:
        return None
    if isinstance(rerank, str):
        name = rerank.strip()
        if not name:
            return configured or DEFAULT_RERANKER
        return name
    if rerank is True:
        return configured or DEFAULT_RERANKER
    return configured


def load_cross_encoder(name: str, *, device: str | None = None) -> CrossEncoder:
    from ..embed import best_device

    location = str(Path(name).expanduser().resolve()) if Path(name).expanduser().exists() else name
    device = device or best_device()
    with _LOCK:
        model = _LOADED.get((location, device))
        if model is None:
            from sentence_transformers import CrossEncoder

            try:
                model = CrossEncoder(location, device=device)
            except (OSError, ValueError, RuntimeError) as exc:  # missing files, bad config, unreachable hub
                hint = (
                    ""
                    if Path(location).exists()
                    else " (no such local folder, and model hubs may be unreachable)"
                )
                raise SearchError(f"cannot load the reranker {name!r}{hint}: {exc}") from exc
            _LOADED[(location, device)] = model
    return model


def score_pairs(name: str, query: str, texts: list[str], *, device: str | None = None) -> list[float]:
    model = load_cross_encoder(name, device=device)
    scores = model.predict([(query, text) for text in texts], show_progress_bar=False, convert_to_numpy=True)
    return [float(s) for s in scores.reshape(len(texts), -1)[:, 0]]


async def rerank_hits(
    name: str, query: str, hits: list[Hit], *, top: int, device: str | None = None
) -> list[Hit]:
    """Reorder the first ``top`` hits by cross-encoder score (the rest keep their order after them)
    and renumber the ranks."""
    head, tail = hits[:top], hits[top:]
    scores = await asyncio.to_thread(score_pairs, name, query, [h.text for h in head], device=device)
    scored = [h.model_copy(update={"rerank": s}) for h, s in zip(head, scores, strict=True)]
    scored.sort(key=lambda h: (-(h.rerank or 0.0), h.rank))
    return [h.model_copy(update={"rank": i}) for i, h in enumerate([*scored, *tail], start=1)]
