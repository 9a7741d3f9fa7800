"""May this encoder add to (and query) a database that another backend or precision encoded?

The same model in int8 ONNX and in torch fp32 gives vectors that agree to a cosine of ~0.99, not
exactly, so a database built with one is opened with the other only after a probe: a fixed set of
stored items is encoded again and compared with the stored vectors. The probe's result is recorded
under the ``embedding_probes`` meta key, keyed by backend/precision, so it runs once per database
and encoder, not on every command (a CLI search must not pay it); ``pyramid reembed`` clears it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import EmbeddingMismatchError
from .store import maintenance

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from .embed import Embedder
    from .store.database import Database

PROBE_ITEMS = 32
MIN_COSINE = 0.99  # the mean over the probe set; the lowest one is reported beside it


async def check_encoder(db: Database, embedder: Embedder, say: Any) -> dict[str, Any] | None:
    """Pass, probe, or refuse: returns the probe's record when one ran (or was recorded)."""
    build = db.build
    assert build is not None
    label = f"{embedder.backend}/{embedder.precision}"
    if (build.embedding_backend, build.embedding_precision) == (embedder.backend, embedder.precision):
        return None
    async with db.connection() as conn:
        probes = await maintenance.embedding_probes(conn)
        record = probes.get(label)
        if record is None:
            record = await _probe(conn, embedder)
            if record is None:  # nothing stored yet to compare with: nothing can disagree
                return None
            probes[label] = record
            await db.write_meta(conn, embedding_probes=probes)
            say(
                f"This database was encoded with {build.embedding_backend}/{build.embedding_precision}; "
                f"{label} re-encodes {record['items']} stored items at mean cosine {record['mean']:.4f} "
                f"(lowest {record['min']:.4f}): {'accepted' if record['ok'] else 'refused'}."
            )
    if not record["ok"]:
        raise EmbeddingMismatchError(
            f"this database was encoded with {build.embedding_backend}/{build.embedding_precision}; "
            f"{label} re-encodes its items at mean cosine {record['mean']:.4f} (< {MIN_COSINE}). Use "
            f"--embedding-backend {build.embedding_backend}, or re-embed everything with "
            f"`pyramid reembed --embedding-backend {embedder.backend}`."
        )
    return record


async def _probe(conn: AsyncConnection, embedder: Embedder) -> dict[str, Any] | None:
    import numpy as np

    texts, stored = await maintenance.probe_sample(conn, PROBE_ITEMS)
    if not texts:
        return None
    fresh = await embedder.aencode_documents(texts)
    cosines = (stored * fresh).sum(axis=1) / np.clip(
        np.linalg.norm(stored, axis=1) * np.linalg.norm(fresh, axis=1), 1e-12, None
    )
    mean = float(cosines.mean())
    return {"items": len(texts), "mean": mean, "min": float(cosines.min()), "ok": mean >= MIN_COSINE}
