"""The recollection agent: cross-document knowledge from the abstracts and concepts of new
documents, related concepts of other documents, and the recollections they concern."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field
from pydantic_ai import Agent

from ..config import OutputMode
from .base import CONCEPTS, DOCUMENT, RECOLLECTIONS, build_agent, frame, send_back
from .insights import STRICT


class NewRecollection(BaseModel):
    model_config = STRICT

    text: str
    concepts: list[int] = Field(description="numbers of the concepts it rests on (two documents or more)")


class RecollectionRevision(BaseModel):
    model_config = STRICT

    number: int = Field(description="the number of the recollection to replace")
    text: str
    concepts: list[int]


class RecollectionEdits(BaseModel):
    model_config = STRICT

    add: list[NewRecollection] = Field(description="new recollections ([] when none)")
    revise: list[RecollectionRevision] = Field(description="revised recollections ([] when none)")


@dataclass(frozen=True)
class RecollectionDeps:
    document_of: Mapping[int, int]  # concept number → document id
    recollections: frozenset[int]  # recollection numbers shown


def check_recollections(deps: RecollectionDeps, edits: RecollectionEdits) -> RecollectionEdits:
    problems: list[str] = []
    entries = [("new recollection", r.text, r.concepts) for r in edits.add] + [
        (f"revision of recollection {r.number}", r.text, r.concepts) for r in edits.revise
    ]
    for label, text, concepts in entries:
        if not text.strip():
            problems.append(f"a {label} has no text")
        unknown = sorted(set(concepts) - set(deps.document_of))
        if unknown:
            problems.append(f"the {label} {text[:40]!r} names concept(s) {unknown}, which are not shown")
        elif len({deps.document_of[c] for c in concepts}) < 2:
            problems.append(f"the {label} {text[:40]!r} must rest on concepts of at least two documents")
    revised = [r.number for r in edits.revise]
    for number in revised:
        if number not in deps.recollections:
            problems.append(f"recollection {number} is not shown")
    if len(set(revised)) != len(revised):
        problems.append("a recollection is revised more than once")
    send_back(problems)
    return edits


def build_recollection_agent(mode: OutputMode = "tool") -> Agent[RecollectionDeps, RecollectionEdits]:
    return build_agent("recollections", RecollectionEdits, RecollectionDeps, check_recollections, mode)


def recollection_prompt(
    documents: Sequence[tuple[str, str, Sequence[tuple[int, str, str]]]],
    related: Sequence[tuple[str, Sequence[tuple[int, str, str]]]],
    recollections: Sequence[tuple[int, str]],
) -> str:
    """``documents``: (title, abstract, concepts) of the new documents; ``related``: (title,
    concepts) of other documents; concepts are (number, name, description)."""
    parts = ["New documents:"]
    for title, abstract, concepts in documents:
        listing = "\n".join(f"{n}. {name}: {description}" for n, name, description in concepts)
        parts.append(frame(DOCUMENT, f"{abstract}\n\nConcepts:\n{listing}", title=title))
    if related:
        parts.append("Related concepts of other documents:")
        for title, concepts in related:
            listing = "\n".join(f"{n}. {name}: {description}" for n, name, description in concepts)
            parts.append(frame(CONCEPTS, listing, document=title))
    listing = "\n".join(f"{n}. {text}" for n, text in recollections)
    parts.append("Existing recollections about them:")
    parts.append(frame(RECOLLECTIONS, listing or "(none)"))
    parts.append("Return the recollections to add or revise.")
    return "\n\n".join(parts)
