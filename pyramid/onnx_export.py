"""Make (once) and find (every time after) the ONNX form of a sentence-transformers model.

The bundled model is exported on first use into a cache folder, by default under the data dir
(``<data_dir>/encoders/<model>-<precision>/``): ``model.onnx``, the model's ``tokenizer.json``,
and ``manifest.json`` with what the runtime needs (pooling, normalisation, max length) and the
sha256 of both files. Every load checks the checksums, and the folder is made again when they do
not match (a half-copied or edited file) or when the source model changed. Nothing is downloaded.

Why not sentence-transformers' ``export_dynamic_quantized_onnx_model``: it needs optimum's ONNX
exporter (``optimum-onnx`` 0.1.0 requires ``transformers<4.58``) while this project runs
transformers 5; installing it would downgrade transformers under sentence-transformers 6. So the same two steps are done directly with
the libraries optimum itself calls: ``torch.onnx.export`` of the transformer, then
``onnxruntime.quantization.quantize_dynamic`` (int8 per-channel weights, dynamic activations), and the pooling
and normalisation modules are reproduced in :mod:`pyramid.onnx_encoder`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import EmbeddingError
from .onnx_encoder import MANIFEST

FORMAT = 1  # bump when the folder layout or the export recipe changes: old caches are rebuilt
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
FILES = ("model.onnx", "tokenizer.json")


def _ort_version() -> str:
    from importlib.metadata import version

    return version("onnxruntime")


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _optimize(src: Path, dest: Path) -> None:
    """Save the graph ONNX Runtime makes of the model (fused attention, layer norms, GELU), so a
    load skips that step: 0.1-0.4 s instead of ~0.9 s on a busy 2-core machine, which is most of a
    CLI query's encoding time. EXTENDED, not ALL: ALL adds layout changes tied to this CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dest)
    options.log_severity_level = 3
    ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])


def cache_folder(cache_root: Path, model_name: str, precision: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("_")[-80:] or "model"
    return cache_root / f"{slug}-{precision}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_stamp(location: str) -> dict[str, int]:
    """Size and mtime of the source model's weights: a changed model makes the cache stale."""
    folder = Path(location)
    for name in _WEIGHTS:
        path = folder / name
        if path.exists():
            st = path.stat()
            return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    raise EmbeddingError(f"no model weights ({' or '.join(_WEIGHTS)}) in {location!r}: cannot export to ONNX")


def verified(folder: Path, *, model_name: str, location: str, precision: str) -> dict[str, Any] | None:
    """The manifest of a usable cache folder, or None when it is missing, stale or corrupt."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    expected = {"format": FORMAT, "model": model_name, "precision": precision}
    if any(manifest.get(key) != value for key, value in expected.items()):
        return None
    try:
        if manifest.get("source_stamp") != source_stamp(location):
            return None
        if manifest.get("onnxruntime") != _ort_version():  # the saved graph may use its own ops
            return None
        for name in FILES:
            # The sha256 is recomputed whenever a file's size or mtime moved since it was written
            # (any copy or edit does); hashing an unchanged 23 MB file on every CLI query would
            # cost a tenth of a second for nothing.
            if (
                _stat(folder / name) != manifest["stat"][name]
                and sha256(folder / name) != manifest["sha256"][name]
            ):
                return None
    except (OSError, KeyError, TypeError, AttributeError):
        return None
    return manifest


def ensure(
    *,
    model_name: str,
    location: str,
    cache_root: Path,
    precision: str,
    on_export: Callable[[Path], None] | None = None,
) -> Path:
    """The verified cache folder for ``model_name`` at ``precision``, exported first if needed
    (``on_export`` is told the folder just before an export starts: it takes a while)."""
    if precision not in ("fp32", "int8"):
        raise EmbeddingError(f"the onnx backend runs fp32 or int8, not {precision!r}")
    folder = cache_folder(cache_root, model_name, precision)
    if verified(folder, model_name=model_name, location=location, precision=precision) is not None:
        return folder
    if on_export is not None:
        on_export(folder)
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_root))
    try:
        with _quiet():
            _export(work, model_name=model_name, location=location, precision=precision)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(work, folder)
        except OSError:
            # Another process finished the same export first: use its folder if it checks out.
            if verified(folder, model_name=model_name, location=location, precision=precision) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def check_exportable(location: str) -> None:
    """Raise EmbeddingError saying why the model at ``location`` cannot be exported (reads only its
    small config files: ``auto`` asks this before it picks the onnx backend)."""
    if not Path(location).is_dir():
        raise EmbeddingError(f"the onnx backend exports a local model folder; {location!r} is not one")
    _pooling(location)
    source_stamp(location)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The tracer warns about every Python branch in BERT's forward and the quantizer asks for a
    # pre-processing step on the root logger: a screenful on a user's first search, none of it theirs.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _pooling(location: str) -> tuple[int, bool]:
    """(max_seq_length, normalize) of a Transformer → mean Pooling [→ Normalize] model; anything
    else is refused rather than encoded differently from sentence-transformers."""
    folder = Path(location)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m for m in modules if m["type"].endswith(".Pooling"))
        pool_cfg = json.loads((folder / pooling["path"] / "config.json").read_text())
        st_cfg = json.loads((folder / "sentence_bert_config.json").read_text())
        prompts_file = folder / "config_sentence_transformers.json"
        prompts = json.loads(prompts_file.read_text()).get("prompts") if prompts_file.exists() else None
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise EmbeddingError(f"cannot read the sentence-transformers modules of {location!r}: {exc}") from exc
    modes = {key for key, on in pool_cfg.items() if key.startswith("pooling_mode_") and on}
    if any(prompts.values() if isinstance(prompts, dict) else []):
        raise EmbeddingError(
            f"{location!r} prefixes queries or documents with prompts, which the onnx backend does not "
            "apply: use --embedding-backend torch"
        )
    if (
        kinds[:2] != ["Transformer", "Pooling"]
        or modes != {"pooling_mode_mean_tokens"}
        or kinds[2:] not in ([], ["Normalize"])
    ):
        raise EmbeddingError(
            f"the onnx backend supports Transformer + mean Pooling (+ Normalize) models; {location!r} "
            f"has {kinds} with {sorted(modes)}: use --embedding-backend torch"
        )
    return int(st_cfg.get("max_seq_length") or 512), kinds[2:] == ["Normalize"]


def _export(work: Path, *, model_name: str, location: str, precision: str) -> None:
    max_length, normalize = _pooling(location)
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise EmbeddingError(f"exporting the ONNX encoder needs torch and transformers: {exc}") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its "Loading weights" bar would break into the CLI's stderr
    model = AutoModel.from_pretrained(location).eval()
    onnx_fp32 = work / ("model.onnx" if precision == "fp32" else "model-fp32.onnx")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
    with torch.no_grad():
        torch.onnx.export(
            _hidden_states(model),
            dummy,
            str(onnx_fp32),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT as is
        )
    raw = onnx_fp32
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # Per-channel weight scales: per-tensor ones put single sentences at cosine 0.95 of fp32
        # (measured on the bundled model), per-channel at >= 0.99.
        raw = work / "model-int8.onnx"
        quantize_dynamic(str(onnx_fp32), str(raw), weight_type=QuantType.QInt8, per_channel=True)
    _optimize(raw, work / "model.onnx")
    for leftover in {onnx_fp32, raw} - {work / "model.onnx"}:
        leftover.unlink(missing_ok=True)
    shutil.copyfile(Path(location) / "tokenizer.json", work / "tokenizer.json")
    config = json.loads((Path(location) / "config.json").read_text())
    manifest = {
        "format": FORMAT,
        "model": model_name,
        "source": location,
        "source_stamp": source_stamp(location),
        "precision": precision,
        "dimension": int(config["hidden_size"]),
        "max_seq_length": max_length,
        "normalize": normalize,
        "pad_id": int(config.get("pad_token_id") or 0),
        "onnxruntime": _ort_version(),
        "exporter": f"torch {torch.__version__} onnx.export"
        + (" + onnxruntime quantize_dynamic(QInt8, per-channel MatMul)" if precision == "int8" else ""),
        "sha256": {name: sha256(work / name) for name in FILES},
        "stat": {name: _stat(work / name) for name in FILES},
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _hidden_states(model: Any) -> Any:
    """The transformer as a module with positional inputs and one output: transformers 5's
    ``forward`` takes further keyword arguments that the tracer would otherwise bind positionally."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    return HiddenStates()
