"""The concept agents: concepts from a batch of insights, and the merge of batch concepts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field
from pydantic_ai import Agent

from ..config import OutputMode
from .base import CONCEPTS, DOCUMENT, INSIGHTS, build_agent, frame, send_back
from .insights import STRICT


class Concept(BaseModel):
    model_config = STRICT

    name: str = Field(description="2-6 words")
    description: str = Field(description="one or two plain sentences")
    insights: list[int] = Field(description="numbers of the insights it connects")


class ConceptList(BaseModel):
    model_config = STRICT

    concepts: list[Concept]


class MergedConcept(BaseModel):
    model_config = STRICT

    name: str
    description: str
    merges: list[int] = Field(description="numbers of the concepts this one stands for")


class MergedConcepts(BaseModel):
    model_config = STRICT

    concepts: list[MergedConcept]


@dataclass(frozen=True)
class NumbersDeps:
    numbers: frozenset[int]  # the numbers shown (insights for concepts, concepts for a merge)


def check_concepts(deps: NumbersDeps, found: ConceptList) -> ConceptList:
    problems: list[str] = []
    if deps.numbers and not found.concepts:
        problems.append("return at least one concept")
    for concept in found.concepts:
        if not concept.name.strip() or not concept.description.strip():
            problems.append(f"concept {concept.name[:40]!r} needs a name and a description")
        if not concept.insights:
            problems.append(f"concept {concept.name[:40]!r} connects no insight")
        unknown = sorted(set(concept.insights) - deps.numbers)
        if unknown:
            problems.append(f"concept {concept.name[:40]!r} names insight(s) {unknown}, which are not shown")
    send_back(problems)
    for concept in found.concepts:
        concept.insights = sorted(set(concept.insights))
    return found


def check_merge(deps: NumbersDeps, merged: MergedConcepts) -> MergedConcepts:
    problems: list[str] = []
    seen: dict[int, str] = {}
    for group in merged.concepts:
        if not group.merges:
            problems.append(f"group {group.name[:40]!r} merges no concept")
        for number in group.merges:
            if number not in deps.numbers:
                problems.append(f"group {group.name[:40]!r} names concept {number}, which is not shown")
            elif number in seen and seen[number] != group.name:
                problems.append(f"concept {number} is in two groups ({seen[number]!r} and {group.name!r})")
            seen[number] = group.name
    missing = sorted(deps.numbers - set(seen))
    if missing:
        problems.append(f"concept(s) {missing} are in no group; every concept belongs to exactly one group")
    send_back(problems)
    return merged


def build_concept_agent(mode: OutputMode = "tool") -> Agent[NumbersDeps, ConceptList]:
    return build_agent("concepts", ConceptList, NumbersDeps, check_concepts, mode)


def build_merge_agent(mode: OutputMode = "tool") -> Agent[NumbersDeps, MergedConcepts]:
    return build_agent("merge_concepts", MergedConcepts, NumbersDeps, check_merge, mode)


def numbered(rows: Sequence[tuple[int, str]]) -> str:
    return "\n".join(f"{number}. {text}" for number, text in rows)


def concepts_prompt(title: str, insights: Sequence[tuple[int, str]], *, part: int, parts: int) -> str:
    # Numbered from 1 in every part, so a part's prompt does not change when an earlier part gains
    # or loses an insight (its cached answer stays valid).
    head = f"Part {part} of {parts} of the document's insights." if parts > 1 else "All insights."
    return "\n\n".join(
        [
            frame(DOCUMENT, title or "(untitled)", role="title"),
            head,
            frame(INSIGHTS, numbered(insights)),
            "Return the concepts.",
        ]
    )


def merge_prompt(title: str, concepts: Sequence[tuple[int, str, str]]) -> str:
    listing = numbered([(number, f"{name}: {description}") for number, name, description in concepts])
    return "\n\n".join(
        [
            frame(DOCUMENT, title or "(untitled)", role="title"),
            frame(CONCEPTS, listing),
            "Return the merged concepts.",
        ]
    )
