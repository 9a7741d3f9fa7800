"""Encode text with an exported ONNX model: ONNX Runtime + ``tokenizers``, no torch.

The model's own sentence-transformers modules are reproduced exactly: the tokenizer from its
``tokenizer.json`` (truncated at ``max_seq_length``, padded to the longest text of a batch, as
sentence-transformers does; the file's own 128-token truncation and padding are not what the
model was used with), mean pooling over the attention mask, then L2 normalisation. Which of those the model has is
read from its ``modules.json`` when it is exported (see :mod:`pyramid.onnx_export`), and refused
there when it is anything else, so this file never guesses.

Loading takes ~0.1 s (the int8 model is 23 MB), so a one-query CLI run can afford it where
importing torch and sentence-transformers took ~13 s.

The int8 model quantizes its activations dynamically, with one scale per input tensor: in a batch,
a text's vector depended on the texts beside it (cosine 0.990 to itself encoded alone), so a re-run
that batched differently stored different vectors and the extractive distiller, which clusters
them, could decide differently. It encodes each text on its own instead (its vector depends on it
alone, as a query's does), which on these CPUs was no slower: no padding to the batch's longest text
(256 sentences: 318/s alone vs 213/s in batches of 32; 64 pages: 23/s vs 20/s).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MANIFEST = "manifest.json"


class OnnxEncoder:
    """One ONNX session and its tokenizer, from a folder that :func:`pyramid.onnx_export.ensure`
    made (``model.onnx``, ``tokenizer.json``, ``manifest.json``)."""

    def __init__(self, folder: Path, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = folder
        self.manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
        self.max_length = int(self.manifest["max_seq_length"])
        self.dimension = int(self.manifest["dimension"])
        self.normalize = bool(self.manifest["normalize"])
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_length)
        tokenizer.no_padding()  # each batch is padded below, to its own longest text
        self.pad_id = int(self.manifest["pad_id"])
        self.tokenizer = tokenizer
        options = ort.SessionOptions()
        # The file is already the optimised graph (pyramid.onnx_export._optimize): load it as is.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # the int8 graph's "unused initializer" warnings are noise
        self.session = ort.InferenceSession(
            str(folder / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]
        # Dynamic activation scales are per tensor: only a batch of one is independent of the others.
        self.per_text = self.manifest.get("precision") == "int8"

    def encode(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        if self.per_text:
            batch_size = 1
        # Batches of similar length pad less (sentence-transformers sorts the same way).
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            out[chosen] = self._batch([encodings[i] for i in chosen])
        return out

    def _batch(self, encodings: list[Any]) -> np.ndarray:
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = 1
            types[row, :n] = enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (hidden,) = self.session.run(None, {name: feeds[name] for name in self.inputs})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.normalize:
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled.astype(np.float32)
