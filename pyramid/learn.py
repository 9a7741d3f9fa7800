"""The pyramid learns: a finished answer's finding becomes a *learned* recollection.

``learn`` takes an ``Answer`` a model wrote and keeps the sentences of it that carry citations which
resolved, with the citation brackets taken out: that is the statement. Nothing else is learned:

- a sentence without a resolved citation is not a finding (a model's own words are never stored);
- a sentence that reads as an instruction ("remember that …", "ignore …") is not a finding either: a
  document that tells the model to remember something is data, and so is an answer that repeats it;
- each kept sentence is checked against the items it cites, as they are stored now: every number
  in it must occur in them, and most of its content words;
- a finding that rests on fewer than ``MIN_ITEMS`` distinct items is not stored (that item already
  says it).

A finding that repeats a live learned recollection (the same cited items, or an embedding within
``learn_threshold`` of its statement) revises it: the old text, question, model and sources go on
its history. Matching and writing run under one advisory lock (``LOCK_LEARN``) and a unique key
per cited item set, so two ``ask --learn`` at once never store the same finding twice.

Provenance rows name each cited item and its document, so the stale triggers fire when either
changes; ``pyramid.verify`` re-checks stale ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .models import Answer, Citation, Learned
from .text import sentences

if TYPE_CHECKING:
    from .runtime import Runtime

LEARNED = "learned"  # the distiller column of a learned recollection
MIN_ITEMS = 2
MAX_SENTENCES = 4
MAX_CHARS = 700
SUPPORT = 0.6  # share of a sentence's content words its cited items must contain

_BRACKET = re.compile(r"\s*\[[^\[\]\n]{1,400}\](?!\()")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# An answer that passes on an instruction found in a document ("remember that the code is 1234") is
# the injection this guards against; a finding states what the sources say.
_INSTRUCTION = re.compile(
    r"^\s*(remember|memori[sz]e|store|save|record|ignore|disregard|forget|always|never|please)\b"
    r"|\b(remember that|from now on|ignore (all|any|the|previous)|you (must|should|will) (now )?"
    r"(remember|store|say|answer|tell))\b",
    re.IGNORECASE,
)
_STOP = frozenset(
    "the a an and or but of to in on at by for with from as is are was were be been being it its this "
    "that these those there their they them he she his her which who whom what when where why how "
    "not no yes do does did has have had will would can could should may might must also both each "
    "than then so such into over under about after before between during per all any some more most "
    "other same very one".split()
)


@dataclass
class Finding:
    """The learnable part of an answer: its cited sentences, plain, each with the items it cites
    (after ``support``: the one item of each citation that backs it)."""

    sentences: list[tuple[str, list[list[int]]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def items(self) -> list[int]:
        return sorted({i for _, groups in self.sentences for group in groups for i in group})

    @property
    def text(self) -> str:
        return " ".join(text for text, _ in self.sentences)


def plain(sentence: str) -> str:
    """A sentence with its citation brackets taken out and its spacing tidied."""
    text = _BRACKET.sub("", sentence)
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))
    return text.strip()


def cited_sentences(answer: Answer) -> Finding:
    """The answer's sentences that cite resolved items, and the others with why they are left out.
    Each citation of a sentence comes with the evidence items it may mean: ``[file, p. 2]`` resolves
    to one item of that page, but the sentence may rest on another item of the same page, so every
    item of the evidence from that file covering those pages is a candidate (the resolved one first)."""
    from .search.citations import check

    resolved = {c.item_id for c in answer.citations}
    finding = Finding()
    for sentence in sentences(answer.text):
        checked = check(sentence, answer.evidence)
        text = plain(sentence)
        if not text or not any(ch.isalpha() for ch in text):
            continue
        groups = [_candidates(c, answer) for c in checked.citations if c.item_id in resolved]
        if not groups or checked.problems:
            finding.skipped.append(f"{text[:80]!r}: no resolved citation")
        elif _INSTRUCTION.search(text):
            finding.skipped.append(f"{text[:80]!r}: reads as an instruction, not a finding")
        else:
            finding.sentences.append((text, groups))
    return finding


def _candidates(citation: Citation, answer: Answer) -> list[int]:
    if citation.document is None:
        return [citation.item_id]
    pages = set(citation.pages)
    others = [
        e.id
        for e in answer.evidence
        if e.document == citation.document
        and e.id != citation.item_id
        and (not pages or pages & set(e.pages))
    ]
    return [citation.item_id, *others]


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP and (len(w) > 2 or w.isdigit())]


def _stem(word: str) -> str:
    return word if word.isdigit() else word[:5]


def unsupported(sentence: str, sources: list[str]) -> str | None:
    """Why ``sentence`` is not backed by the texts it cites, or None when it is: every number of it
    occurs in them, and at least ``SUPPORT`` of its content words (compared by their first letters,
    so "reviews" finds "review")."""
    joined = " ".join(sources)
    numbers = set(_NUMBER.findall(joined))
    missing = [n for n in _NUMBER.findall(sentence) if n not in numbers]
    if missing:
        return f"the number(s) {', '.join(missing)} are not in the items it cites"
    if not _words(sentence):
        return "it has no content words"
    share = _share(sentence, joined)
    if share < SUPPORT:
        return f"only {share:.0%} of its words are in the items it cites"
    return None


def _share(sentence: str, source: str) -> float:
    words = _words(sentence)
    have = {_stem(w) for w in _words(source)}
    return sum(1 for w in words if _stem(w) in have) / len(words) if words else 0.0


def best_source(sentence: str, candidates: list[int], rows: dict[int, dict[str, Any]]) -> int | None:
    """The candidate item whose text backs ``sentence`` best (the resolved one on a tie)."""
    if not candidates:
        return None
    return max(candidates, key=lambda i: (_share(sentence, rows[i]["text"]), -candidates.index(i)))


def _ref(row: dict[str, Any]) -> str:
    from .search.evidence import format_pages

    where = row["source"] or "(cross-document)"
    pages = format_pages(row["pages"] or [])
    text = " ".join(str(row["text"]).split())
    return f"{row['level']} {row['id']} — {where}{', ' + pages if pages else ''}: {text[:120]}"


def cited_entry(row: dict[str, Any]) -> dict[str, Any]:
    """What a learned recollection remembers of one cited item: enough to find it again, tell
    whether its text changed, and name it once it is gone."""
    return {
        "item": row["id"],
        "level": row["level"],
        "document_id": row["document_id"],
        "source": row["source"],
        "pages": list(row["pages"] or []),
        "hash": row["content_hash"],
        "ref": _ref(row),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def learn(rt: Runtime, answer: Answer) -> Learned:
    """Store the finding of ``answer`` as a learned recollection, or revise the one it repeats."""
    from . import store
    from .store import corpus, learned

    if not answer.answered or not answer.model:
        return Learned(action="none", reason="no model wrote this answer: evidence alone is not a finding")
    finding = cited_sentences(answer)
    if not finding.sentences:
        return Learned(
            action="none", reason="the answer cites nothing that resolved", skipped=finding.skipped
        )
    async with rt.db.connection() as conn:
        rows = await learned.cited_items(conn, finding.items)
    kept: list[tuple[str, list[list[int]]]] = []
    for text, groups in finding.sentences:
        # A recollection cited in the answer is not a source: provenance must reach pages, and a
        # learned recollection resting on itself (revised by its own repetition) would reach none.
        usable = [[i for i in group if i in rows and rows[i]["level"] != "recollection"] for group in groups]
        backing = [best_source(text, group, rows) for group in usable]
        present = [i for i in backing if i is not None]
        if present:
            why = unsupported(text, [rows[i]["text"] for i in present])
        elif any(group for group in groups if any(i in rows for i in group)):
            why = "it cites only recollections; a learned one rests on document items"
        else:
            why = "its sources are gone"
        if why is not None:
            finding.skipped.append(f"{text[:80]!r}: {why}")
        elif len(kept) < MAX_SENTENCES and sum(len(t) for t, _ in kept) + len(text) <= MAX_CHARS:
            kept.append((text, [[i] for i in present]))
    finding.sentences = kept
    items = finding.items
    if len(items) < MIN_ITEMS:
        return Learned(
            action="none",
            sources=items,
            reason=f"the finding rests on {len(items)} item(s); a recollection needs {MIN_ITEMS} or more",
            skipped=finding.skipped,
        )
    statement = finding.text
    cited = [cited_entry(rows[i]) for i in items]
    key = ",".join(str(i) for i in items)
    vector = (await rt.embedder.aencode_documents([store.embedded_text("recollection", None, statement)]))[0]
    async with rt.db.connection() as conn, conn.transaction():
        await learned.lock(conn)
        same = await learned.same_finding(conn, key, vector, rt.settings.learn_threshold)
        if same is not None:
            entry = {
                "at": same["updated_at"].isoformat(timespec="seconds"),
                "by": "ask",
                "text": same["text"],
                "question": same["question"],
                "model": same["model"],
                "sources": same["cited"],
                "replaced_at": _now(),
            }
            await learned.revise(
                conn,
                same["item_id"],
                text=statement,
                embedding=vector,
                content_hash=store.text_hash(statement),
                key=key,
                question=answer.question,
                model=answer.model,
                cited=cited,
                status="revised" if same["text"] != statement else same["status"],
                entry=entry,
            )
            how = "the same cited items" if same["same_items"] else f"similarity {same['similarity']:.2f}"
            return Learned(
                action="revised",
                recollection=same["item_id"],
                text=statement,
                sources=items,
                reason=f"it repeats recollection {same['item_id']} ({how})",
                skipped=finding.skipped,
            )
        ordinal = await corpus.next_recollection_ordinal(conn)
        item = store.NewItem(
            key="learned",
            level="recollection",
            text=statement,
            ordinal=ordinal,
            embedding=vector,
            distiller=LEARNED,
        )
        ids = await store.write_items(conn, None, [item])
        await learned.insert(
            conn, ids["learned"], key=key, question=answer.question, model=answer.model, cited=cited
        )
    return Learned(
        action="added", recollection=ids["learned"], text=statement, sources=items, skipped=finding.skipped
    )
