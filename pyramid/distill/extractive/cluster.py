"""The vector algorithms of the extractive distiller: near-duplicate removal (FAISS inner product on
normalised embeddings, i.e. cosine), k-means concepts (FAISS), key phrases that tell clusters apart
(class-based TF-IDF), and the centroid + MMR selection of an abstract.

Everything here is deterministic (fixed seeds, stable tie-breaks) and runs on a worker thread.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...text.words import STOPWORDS

if TYPE_CHECKING:
    import numpy as np

_TOKEN = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ0-9'’\-]*|\d+(?:[.,]\d+)*|[^\sA-Za-zÀ-ÿ0-9]")
SEED = 20240531


def _faiss() -> Any:
    import faiss

    return faiss


def near_duplicates(vectors: np.ndarray, threshold: float) -> list[int]:
    """For each row, the index of the earlier kept row it duplicates (cosine ≥ threshold), or -1 when
    it is kept. Rows are taken in order, so the first occurrence of a sentence survives."""
    import numpy as np

    n = len(vectors)
    if n == 0:
        return []
    faiss = _faiss()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    k = min(n, 16)
    sims, neighbours = index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
    owner = [-1] * n
    for i in range(n):
        for sim, j in zip(sims[i], neighbours[i], strict=True):
            if j < 0 or j >= i or sim < threshold:
                continue
            if owner[j] == -1:  # only a kept sentence can absorb a later one
                owner[i] = int(j)
                break
    return owner


def kmeans(vectors: np.ndarray, k: int) -> list[int]:
    """Cluster ids (0..k'-1, in order of first appearance, empty clusters dropped) of FAISS
    spherical k-means over the rows."""
    import numpy as np

    n = len(vectors)
    if n == 0:
        return []
    k = max(1, min(k, n))
    if k == 1:
        return [0] * n
    faiss = _faiss()
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    # min_points_per_centroid=1: a short document has few sentences, and that is fine (FAISS would
    # warn on stderr otherwise).
    km = faiss.Kmeans(
        data.shape[1],
        k,
        niter=25,
        seed=SEED,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=100_000,
    )
    km.train(data)
    _, assigned = km.index.search(data, 1)
    relabel: dict[int, int] = {}
    return [relabel.setdefault(int(c), len(relabel)) for c in assigned[:, 0]]


def centrality(vectors: np.ndarray, members: Sequence[int]) -> list[int]:
    """Members ordered from the most to the least central (cosine to their normalised mean)."""
    import numpy as np

    if not members:
        return []
    sub = vectors[list(members)]
    centre = sub.mean(axis=0)
    norm = float(np.linalg.norm(centre)) or 1.0
    scores = sub @ (centre / norm)
    order = sorted(range(len(members)), key=lambda i: (-float(scores[i]), i))
    return [members[i] for i in order]


def mmr(
    vectors: np.ndarray, budget_words: int, lengths: Sequence[int], *, diversity: float = 0.3
) -> list[int]:
    """Maximal marginal relevance: pick rows close to the document's centroid and far from the rows
    already picked, while their word count fits the budget. Returns the picked rows (in pick order);
    at least one row whenever there are rows."""
    import numpy as np

    n = len(vectors)
    if n == 0:
        return []
    centre = vectors.mean(axis=0)
    centre = centre / (float(np.linalg.norm(centre)) or 1.0)
    relevance = vectors @ centre
    picked: list[int] = []
    used = 0
    candidates = set(range(n))
    max_sim = np.full(n, -1.0, dtype=np.float32)
    while candidates:
        best, best_score = -1, -math.inf
        for i in sorted(candidates):
            redundancy = float(max_sim[i]) if picked else 0.0
            score = (1 - diversity) * float(relevance[i]) - diversity * redundancy
            if score > best_score:
                best, best_score = i, score
        candidates.discard(best)
        if used + lengths[best] > budget_words and picked:
            continue  # too long for what is left; a shorter one may still fit
        picked.append(best)
        used += lengths[best]
        max_sim = np.maximum(max_sim, vectors @ vectors[best])
        if used >= budget_words:
            break
    return picked


# --- key phrases ------------------------------------------------------------------------------------


def phrases(text: str, *, max_len: int = 3) -> list[str]:
    """Candidate key phrases: runs of content words (no stopwords, no punctuation inside), and their
    sub-phrases of up to ``max_len`` words, in their surface form."""
    runs: list[list[str]] = [[]]
    for token in _TOKEN.findall(text):
        if token.lower() in STOPWORDS or not token[0].isalnum() or token.isdigit():
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append(token)
    found = []
    for run in runs:
        for size in range(1, max_len + 1):
            for start in range(0, len(run) - size + 1):
                found.append(" ".join(run[start : start + size]))
    return found


def key_phrases(groups: Sequence[Sequence[str]], *, top: int = 3) -> list[list[str]]:
    """For each group of texts, the phrases that best tell it apart from the other groups
    (class-based TF-IDF: frequent in the group, rare in the others), longer phrases preferred, and
    no phrase that is part of one already chosen."""
    counts: list[Counter[str]] = []
    surface: dict[str, Counter[str]] = {}
    for texts in groups:
        counter: Counter[str] = Counter()
        for text in texts:
            seen = set()
            for phrase in phrases(text):
                key = phrase.lower()
                if key in seen:
                    continue
                seen.add(key)
                counter[key] += 1
                surface.setdefault(key, Counter())[phrase] += 1
        counts.append(counter)
    df: Counter[str] = Counter()
    for counter in counts:
        df.update(counter.keys())
    n = len(groups)
    result = []
    for texts, counter in zip(groups, counts, strict=True):
        scored = []
        for key, tf in counter.items():
            size = key.count(" ") + 1
            idf = math.log((1 + n) / (1 + df[key])) + 1
            # A phrase seen once in a large group says little; a multi-word phrase says more.
            score = tf * idf * (1 + 0.5 * (size - 1))
            if tf == 1 and len(texts) > 2 and size == 1:
                score *= 0.5
            scored.append((score, size, key))
        scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
        chosen: list[str] = []
        for _, _, key in scored:
            if any(f" {key} " in f" {other} " or f" {other} " in f" {key} " for other in chosen):
                continue
            chosen.append(key)
            if len(chosen) == top:
                break
        result.append([surface[key].most_common(1)[0][0] for key in chosen])
    return result
