"""The abstract agent: one dense paragraph from a document's concepts and insights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field
from pydantic_ai import Agent

from ..config import OutputMode
from .base import CONCEPTS, DOCUMENT, INSIGHTS, build_agent, frame, send_back
from .concepts import numbered
from .insights import STRICT


class Abstract(BaseModel):
    model_config = STRICT

    text: str = Field(description="one paragraph")
    concepts: list[int] = Field(description="numbers of the concepts the abstract draws on")


@dataclass(frozen=True)
class AbstractDeps:
    concepts: frozenset[int]
    max_words: int


def check_abstract(deps: AbstractDeps, abstract: Abstract) -> Abstract:
    problems: list[str] = []
    words = len(abstract.text.split())
    if not words:
        problems.append("the abstract is empty")
    elif words > deps.max_words:
        problems.append(f"the abstract has {words} words; shorten it to at most {deps.max_words}")
    unknown = sorted(set(abstract.concepts) - deps.concepts)
    if unknown:
        problems.append(f"concept(s) {unknown} are not shown")
    if deps.concepts and not abstract.concepts:
        problems.append("name the concepts the abstract draws on")
    send_back(problems)
    abstract.concepts = sorted(set(abstract.concepts))
    return abstract


def build_abstract_agent(mode: OutputMode = "tool") -> Agent[AbstractDeps, Abstract]:
    return build_agent("abstract", Abstract, AbstractDeps, check_abstract, mode)


def abstract_prompt(
    title: str,
    concepts: Sequence[tuple[int, str, str]],
    insights: Sequence[tuple[int, str]],
    *,
    max_words: int,
) -> str:
    listing = numbered([(number, f"{name}: {description}") for number, name, description in concepts])
    return "\n\n".join(
        [
            frame(DOCUMENT, title or "(untitled)", role="title"),
            "Concepts:",
            frame(CONCEPTS, listing or "(none)"),
            "Insights:",
            frame(INSIGHTS, numbered(insights) or "(none)"),
            f"Write the abstract in at most {max_words} words.",
        ]
    )
