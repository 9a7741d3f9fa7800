"""The insight agent: reads one two-page window and returns edits to the numbered insight list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai import Agent

from ..config import OutputMode
from .base import DOCUMENT, INSIGHTS, PAGE, build_agent, frame, send_back

MAX_WORDS = 45
# Every field required and no unknown key: a schema that llama.cpp's grammar converter, vLLM's guided
# decoding and OpenAI strict mode all accept, and under which an empty `{}` is invalid output, not
# "no changes".
STRICT = ConfigDict(extra="forbid")


class NewInsight(BaseModel):
    model_config = STRICT

    text: str = Field(description="one short subject-verb-object sentence")
    pages: list[int] = Field(description="the page number(s) it comes from")


class InsightRevision(BaseModel):
    model_config = STRICT

    number: int = Field(description="the number of the insight to replace")
    text: str
    pages: list[int]


class WindowEdits(BaseModel):
    model_config = STRICT

    add: list[NewInsight] = Field(description="new insights ([] when none)")
    revise: list[InsightRevision] = Field(description="revised insights ([] when none)")
    delete: list[int] = Field(description="numbers of insights to delete ([] when none)")


@dataclass(frozen=True)
class WindowDeps:
    pages: tuple[int, ...]  # the page numbers of the window
    shown: frozenset[int]  # the insight numbers shown to the model: the only ones it may change
    # The words of the window's pages (lower case): an insight sharing none of its content words
    # with them was not read there (small models copy examples or invent).
    words: frozenset[str] = frozenset()


def content_words(text: str) -> set[str]:
    """Lower-case words of 4+ letters or any number: what an insight must share with its pages."""
    return {w for w in re.findall(r"[^\W_]+", text.lower()) if len(w) >= 4 or w.isdigit()}


def check_edits(deps: WindowDeps, edits: WindowEdits) -> WindowEdits:
    """Every problem of an answer, sent back together so one retry can fix them all."""
    problems: list[str] = []
    allowed = ", ".join(str(p) for p in deps.pages)
    touched: set[int] = set()
    for number in [r.number for r in edits.revise] + list(edits.delete):
        if number not in deps.shown:
            problems.append(
                f"insight {number} is not one of the insights shown to you; you can only change those"
            )
        elif number in touched:
            problems.append(f"insight {number} is revised or deleted more than once")
        touched.add(number)
    for label, text, pages in [("new insight", a.text, a.pages) for a in edits.add] + [
        (f"revision of insight {r.number}", r.text, r.pages) for r in edits.revise
    ]:
        if not text.strip():
            problems.append(f"a {label} has no text")
        elif len(text.split()) > MAX_WORDS:
            problems.append(f"the {label} {text[:40]!r}… is longer than {MAX_WORDS} words: split it")
        if not pages:
            problems.append(f"the {label} {text[:40]!r} names no page")
        elif deps.words and not content_words(text) & deps.words:
            problems.append(f"the {label} {text[:40]!r} shares no word with the pages; write what they say")
        outside = sorted(set(pages) - set(deps.pages))
        if outside:
            problems.append(
                f"the {label} {text[:40]!r} names page(s) {outside}, outside this window ({allowed})"
            )
    send_back(problems)
    return edits


def build_insight_agent(mode: OutputMode = "tool") -> Agent[WindowDeps, WindowEdits]:
    return build_agent("insights", WindowEdits, WindowDeps, check_edits, mode)


def window_prompt(
    title: str,
    pages: Sequence[tuple[int, str, bool]],
    shown: Sequence[tuple[int, str, Sequence[int]]],
    *,
    position: int,
    windows: int,
) -> str:
    """The user message of one window: ``pages`` are (number, text, seen before), ``shown`` the
    insights so far for these pages as (number, text, pages)."""
    parts = [frame(DOCUMENT, title or "(untitled)", role="title"), f"Window {position} of {windows}."]
    for number, text, seen in pages:
        reading = "second reading: you read it in the previous window" if seen else "first reading"
        parts.append(f"Page {number} ({reading}):")
        parts.append(frame(PAGE, text, page=str(number)))
    listing = "\n".join(
        f"{number}. [{'pp.' if len(pp) > 1 else 'p.'} {', '.join(str(p) for p in pp)}] {text}"
        for number, text, pp in shown
    )
    parts.append("Insights so far for these pages:")
    parts.append(frame(INSIGHTS, listing or "(none yet)"))
    allowed = " and ".join(str(number) for number, _, _ in pages)
    parts.append(f"Return the changes. Pages you may name: {allowed}.")
    return "\n\n".join(parts)
