"""Cross-encoder reranking (sentence-transformers ``CrossEncoder``), by model name or local path: which
reranker a search uses (``resolve_reranker``), loading it, and scoring with it.

The model is loaded once per process and device (CUDA when available) and run off the event loop.
No reranker weights ship on PyPI: a path is loaded as it is, a name from the Hugging Face cache, or
from the model hub when it answers (``locate_reranker``; offline that fails at once, in one line).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SearchError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from ..models import Hit

# A real, small cross-encoder; used when rerank is asked for without naming one (needs the hub or
# a local copy under this name).
DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"

PROBE_TIMEOUT = 5.0  # seconds for the one hub request that tells "downloadable" from "unreachable"

_LOADED: dict[tuple[str, str], CrossEncoder] = {}
_LOCATED: dict[str, str] = {}  # hub name → where it loads from
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


def _how_to_provide(name: str) -> str:
    return (
        "provide one as a local folder (a sentence-transformers cross-encoder): --rerank /path/to/model "
        f"or PYRAMID_RERANKER=/path/to/model (on a machine with network: hf download {name} --local-dir DIR)"
    )


def locate_reranker(name: str) -> str:
    """Where the cross-encoder ``name`` is loaded from: a local folder, its snapshot in the Hugging
    Face cache, or the hub name itself when the hub answers. Fails at once, in one line, when none
    of these holds: loading it blind spent ~70 s on a dozen hub retries before failing offline."""
    local = Path(name).expanduser()
    if local.exists():
        return str(local.resolve())
    if name in _LOCATED:
        return _LOCATED[name]
    looks_like_path = name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name
    if looks_like_path:
        raise SearchError(
            f"the reranker {name!r} is not available locally: no such folder; {_how_to_provide('NAME')}"
        )
    from huggingface_hub import constants, model_info, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        _LOCATED[name] = snapshot_download(name, local_files_only=True)
        return _LOCATED[name]
    except HFValidationError:  # not a hub name either ("a b", "x//y")
        raise SearchError(
            f"the reranker {name!r} is not available locally: no such folder; {_how_to_provide('NAME')}"
        ) from None
    except LocalEntryNotFoundError:
        pass  # not cached: ask the hub below, unless told to stay offline
    missing = (
        f"the reranker {name!r} is not available locally (no such folder, not in the Hugging Face cache)"
    )
    if constants.HF_HUB_OFFLINE:
        raise SearchError(f"{missing} and HF_HUB_OFFLINE is set; {_how_to_provide(name)}")
    try:
        model_info(name, timeout=PROBE_TIMEOUT)
    except RepositoryNotFoundError:
        raise SearchError(
            f"{missing} and the model hub has no model {name!r}; {_how_to_provide(name)}"
        ) from None
    except Exception as exc:  # noqa: BLE001 — DNS, proxy, TLS, timeout: the HTTP client's own errors
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise SearchError(
            f"{missing} and the model hub cannot be reached ({reason}); {_how_to_provide(name)}"
        ) from None
    _LOCATED[name] = name  # the hub answered: sentence-transformers downloads it into the cache
    return name


def load_cross_encoder(name: str, *, device: str | None = None) -> CrossEncoder:
    from ..embed import best_device

    location = locate_reranker(name)
    device = device or best_device()
    with _LOCK:
        model = _LOADED.get((location, device))
        if model is None:
            from sentence_transformers import CrossEncoder

            try:
                model = CrossEncoder(location, device=device)
            except (OSError, ValueError, RuntimeError) as exc:  # missing files, bad config, lost network
                raise SearchError(f"cannot load the reranker {name!r}: {' '.join(str(exc).split())}") from exc
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
