"""Extractive recollections: concepts of different documents that say the same thing.

After a batch, every concept of the corpus is compared with every other (FAISS inner product on
normalised embeddings). Pairs from different documents above ``recollection_threshold`` are joined,
most similar first, into groups of at most ``recollection_size`` concepts (a size cap, so that
chains of pairwise-similar concepts do not merge the whole corpus into one group). Each group that
spans two or more documents becomes a recollection whose sources are its concepts.

The set is recomputed for the whole corpus, so a removed or changed document's groups go away; a
recollection whose text and sources did not change keeps its id, also when its concepts were
stored again under new ids (``write_recollections`` matches them by their trail). User and LLM
recollections are not touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...store import corpus
from ...store.corpus import CorpusConcept
from ..base import NewRecollection, write_recollections

if TYPE_CHECKING:
    import numpy as np

    from ...config import Settings
    from ...runtime import Runtime

NAME = "extractive"
MAX_DESCRIPTION_WORDS = 40


def groups(concepts: list[CorpusConcept], vectors: np.ndarray, settings: Settings) -> list[list[int]]:
    """Indexes of the concepts of each group that spans at least two documents."""
    import faiss
    import numpy as np

    n = len(concepts)
    if n < 2:
        return []
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(data.shape[1])
    index.add(data)
    sims, neighbours = index.search(data, min(n, 16))
    edges = sorted(
        {
            (-float(s), min(i, int(j)), max(i, int(j)))
            for i in range(n)
            for s, j in zip(sims[i], neighbours[i], strict=True)
            if j >= 0
            and s >= settings.recollection_threshold
            and concepts[int(j)].document_id != concepts[i].document_id
        }
    )
    parent = list(range(n))
    size = [1] * n

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _, a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb and size[ra] + size[rb] <= settings.recollection_size:
            parent[rb] = ra
            size[ra] += size[rb]
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return [sorted(group) for group in members.values() if len({concepts[i].document_id for i in group}) >= 2]


def describe(group: list[int], concepts: list[CorpusConcept], label: list[str], vectors: np.ndarray) -> str:
    """ "fishkeeping, hobby: a theme of 3 documents (A, B, C). <the most central concept's text>" """
    from .cluster import centrality

    titles: list[str] = []
    for i in group:
        if concepts[i].document not in titles:
            titles.append(concepts[i].document)
    central = concepts[centrality(vectors, group)[0]]
    description = central.text.split()
    if len(description) > MAX_DESCRIPTION_WORDS:
        description = [*description[:MAX_DESCRIPTION_WORDS], "…"]
    head = ", ".join(label) or central.name
    return f"{head}: a theme of {len(titles)} documents ({', '.join(titles)}). {' '.join(description)}"


async def refresh_recollections(rt: Runtime) -> int:
    """Recompute the extractive recollections of the corpus; returns how many there are."""
    import numpy as np

    from .cluster import key_phrases

    async with rt.db.connection() as conn:
        rows = await corpus.concepts(conn)
        existing = await corpus.recollections_by(conn, NAME)
    concepts = [concept for concept, _ in rows]
    # pgvector hands back Vector objects (or arrays, depending on its version)
    vectors = np.array([getattr(v, "to_numpy", lambda v=v: v)() for _, v in rows], dtype=np.float32)
    vectors = vectors.reshape(len(rows), -1)
    # Each group in the order of its documents' sources, not of concept ids: ids follow the order in
    # which concurrent documents were stored, and with it the titles' order and a label's spelling
    # ("Damaged fruit" or "damaged fruit") changed between two ingests of the same files.
    found = [
        sorted(group, key=lambda i: (concepts[i].source, concepts[i].name, concepts[i].text))
        for group in groups(concepts, vectors, rt.settings)
    ]
    labels = key_phrases([[f"{concepts[i].name}. {concepts[i].text}" for i in g] for g in found])
    wanted = []
    for group, label in zip(found, labels, strict=True):
        wanted.append(
            (describe(group, concepts, label, vectors), sorted(concepts[i].id for i in group), group)
        )
    # New ones are numbered in the order of what they say, not of concept ids (which follow the
    # order documents happened to be stored in): a run resumed after a crash numbers them alike.
    wanted.sort(key=lambda entry: entry[0])
    old = {(r["text"], tuple(r["sources"])): r["id"] for r in existing if not r["stale"]}
    keep = {old[(text, tuple(ids))] for text, ids, _ in wanted if (text, tuple(ids)) in old}
    fresh = [(text, ids, group) for text, ids, group in wanted if (text, tuple(ids)) not in old]
    gone = [r["id"] for r in existing if r["id"] not in keep]
    made = [NewRecollection(text, [concepts[i] for i in group]) for text, _, group in fresh]
    await write_recollections(rt, NAME, made, remove=gone)
    return len(wanted)
