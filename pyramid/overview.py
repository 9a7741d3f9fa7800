"""``pyramid overview``: what the collection holds, without a model.

- documents by format and size (a feed file's bytes count once);
- its main themes: the most central concepts across documents. For each concept, the documents that
  have a concept within ``THEME_LINK`` cosine of it are the documents it spans; themes are the
  concepts that span the most documents (ties: the closer those concepts are), skipping one within
  ``THEME_DISTINCT`` of a theme already chosen. At most ``PER_DOCUMENT`` concepts of each document
  (its first) take part, so the pairwise step stays small on a large collection;
- what the recollections say (how many of each kind; some of them, learned ones first);
- example questions built from themes that span documents, pairs of themes that share documents, and
  the questions learned recollections were learned from; with a model, written by it from the themes
  and recollections (``model_questions``), the built ones kept when its answer cannot be used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import (
    DocumentBrief,
    FormatCount,
    Overview,
    RecollectionBrief,
    RecollectionView,
    Theme,
)

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from .runtime import Runtime

THEME_LINK = 0.5
THEME_DISTINCT = 0.75
MAX_THEMES = 8
MIN_THEMES = 3  # filled up with single-document concepts when fewer themes span documents
PER_DOCUMENT = 40
SAYS = 5
MAX_QUESTIONS = 10
MIN_QUESTIONS = 5
THEME_QUESTIONS = 6
PAIR_QUESTIONS = 2
BLOCK = 512


async def overview(rt: Runtime, *, model: str | Model | None = None) -> Overview:
    from .recollections import recollections
    from .store import overview as reads

    async with rt.db.connection() as conn:
        docs = await reads.documents(conn)
        formats = await reads.formats(conn)
        concepts = await reads.concepts(conn, per_document=PER_DOCUMENT)
    titles = {row["id"]: row["title"] for row in docs}
    live = await recollections(rt)
    result = Overview(
        documents=[
            DocumentBrief(
                id=r["id"],
                title=r["title"],
                source=r["source"],
                format=r["format"],
                pages=r["page_count"],
                bytes=r["file_size"],
            )
            for r in docs
        ],
        formats=[
            FormatCount(
                format=r["format"] or "?",
                documents=r["documents"],
                files=r["files"],
                pages=int(r["pages"] or 0),
                bytes=int(r["bytes"] or 0),
            )
            for r in formats
        ],
        themes=themes(concepts, titles),
        recollections=_kinds(live),
        says=_says(live),
    )
    result.pages = sum(f.pages for f in result.formats)
    result.bytes = sum(f.bytes for f in result.formats)
    result.questions = questions(result.themes, live, result.documents)
    if model is not None:
        await model_questions(rt, result, model)
    return result


async def model_questions(rt: Runtime, view: Overview, model: str | Model) -> None:
    """Replace ``view.questions`` by the model's (``questions_by``); on a model that fails or keeps
    writing unusable questions, keep the built ones and say why (``notices``)."""
    from .agents.base import CallPolicy, OutputModes, model_label, resolve_model, run_agent
    from .agents.questions import build_questions_agent, questions_prompt
    from .errors import ModelError

    llm = resolve_model(model)
    prompt, deps = questions_prompt(view)
    try:
        written = await run_agent(
            build_questions_agent,
            prompt,
            deps=deps,
            model=llm,
            policy=CallPolicy.from_settings(rt.settings),
            spent=lambda _usage: None,
            what="the example questions",
            max_tokens=512,
            modes=OutputModes(rt.settings.output_mode, llm, rt.say),
        )
    except ModelError as exc:
        view.notices.append(f"{exc}; the questions are built from the themes")
        return
    view.questions, view.questions_by = written.questions, model_label(model)


def _name(row: dict[str, Any]) -> str:
    name = (row["title"] or "").strip() or " ".join(str(row["text"]).split()[:8])
    return _cut(name, 80)


def _cut(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _array(value: Any) -> Any:
    import numpy as np

    # pgvector hands back a Vector (its to_numpy) or, with numpy registered, an array.
    return value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)


def themes(rows: list[dict[str, Any]], titles: dict[int, str]) -> list[Theme]:
    """The central concepts of ``rows`` (id, document_id, title, text, embedding); see the module."""
    import numpy as np

    if not rows:
        return []
    vectors = np.asarray([_array(r["embedding"]) for r in rows], dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    docs = np.asarray([r["document_id"] for r in rows])
    spans: list[list[tuple[float, int]]] = []  # per concept: (best similarity, document), best first
    for start in range(0, len(rows), BLOCK):
        sims = vectors[start : start + BLOCK] @ vectors.T
        for offset, row in enumerate(sims):
            own = int(docs[start + offset])
            best: dict[int, float] = {own: 1.0}
            for j in np.nonzero(row >= THEME_LINK)[0]:
                doc = int(docs[j])
                if doc != own and row[j] > best.get(doc, -1.0):
                    best[doc] = float(row[j])
            spans.append(sorted(((s, d) for d, s in best.items()), reverse=True))
    order = sorted(
        range(len(rows)), key=lambda i: (-len(spans[i]), -sum(s for s, _ in spans[i]), rows[i]["id"])
    )
    chosen: list[int] = []
    for i in order:
        if len(chosen) >= MAX_THEMES or (len(spans[i]) < 2 and len(chosen) >= MIN_THEMES):
            break
        if any(float(vectors[i] @ vectors[j]) >= THEME_DISTINCT for j in chosen):
            continue
        chosen.append(i)
    return [
        Theme(
            name=_name(rows[i]),
            text=_cut(str(rows[i]["text"]), 300),
            concept_id=rows[i]["id"],
            documents=len(spans[i]),
            titles=[titles.get(d, str(d)) for _, d in spans[i]],
        )
        for i in chosen
    ]


def _kinds(live: list[RecollectionView]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for view in live:
        counts[view.kind] = counts.get(view.kind, 0) + 1
    return counts


def _says(live: list[RecollectionView]) -> list[RecollectionBrief]:
    rank = {"learned": 0, "user": 1, "distilled": 2}
    ordered = sorted(live, key=lambda v: (rank[v.kind], v.status == "stale", -v.id))
    return [RecollectionBrief(id=v.id, kind=v.kind, status=v.status, text=v.text) for v in ordered[:SAYS]]


def _titles(names: list[str]) -> str:
    names = [_cut(n, 50) for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _topic(theme: Theme) -> str:
    """What a question names a theme by: its name, or the first phrase of an extractive keyword list
    ("Holm Orchards, firmware 3.2, apples" → "Holm Orchards")."""
    return theme.name.split(", ")[0].strip() or theme.name


def questions(found: list[Theme], live: list[RecollectionView], documents: list[DocumentBrief]) -> list[str]:
    """5–10 questions the pyramid can answer well: the evidence for them spans documents."""
    asked: list[str] = []
    topics: set[str] = set()

    def add(question: str) -> None:
        if question not in asked and len(asked) < MAX_QUESTIONS:
            asked.append(question)

    spanning = [t for t in found if t.documents >= 2]
    for theme in spanning[:THEME_QUESTIONS]:
        topic = _topic(theme)
        if topic.lower() not in topics:
            topics.add(topic.lower())
            add(f"What do {_titles(theme.titles[:3])} say about {topic}?")
    pairs = [
        (a, b)
        for n, a in enumerate(spanning)
        for b in spanning[n + 1 :]
        if set(a.titles) & set(b.titles) and _topic(a).lower() != _topic(b).lower()
    ]
    for first, second in pairs[:PAIR_QUESTIONS]:
        add(f"How is {_topic(first)} related to {_topic(second)}?")
    for view in live:
        if view.kind == "learned" and view.question:
            add(view.question)
    for doc in sorted(documents, key=lambda d: -d.pages):
        if len(asked) >= MIN_QUESTIONS:
            break
        add(f"What is {_cut(doc.title, 60)} about?")
    return asked
