"""Answering a question: the ``Answer`` value, and ``ask`` itself.

With a model, the search agent (``pyramid.agents.search_agent``) researches the pyramid and writes a
cited answer. Without one, ``ask`` is still useful and never an error: it returns the best evidence
for the question across levels, each item with its citation, and says that no LLM is configured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .citations import QUOTE_CHARS, Citation
from .config import Level
from .distill import EXTRACTIVE_NAMES
from .errors import SearchError
from .evidence import Evidence, Labels, search_items, select
from .models import Usage

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from .runtime import Runtime

NO_MODEL_TEXT = (
    "No LLM is configured (set PYRAMID_MODEL or pass --model), so this is not an answer: it is the best "
    "evidence for the question across levels, best first, each with its citation."
)
NOTHING_FOUND = "Nothing in the pyramid matches the question."


AskEventKind = Literal["tool_call", "tool_result", "text", "reset", "answer"]


@dataclass
class AskEvent:
    """What ``ask`` reports while it works, for a listener (``on_event``) that shows progress:

    - ``tool_call``: the research calls ``tool`` (search, expand, note) with ``args``;
    - ``tool_result``: that call is answered; ``summary`` says what came back;
    - ``text``: the next piece of the answer as the model writes it;
    - ``reset``: the answer written so far was rejected (a citation did not resolve) and is written
      again: drop the text shown;
    - ``answer``: the finished ``Answer``, citations validated (always the last event).
    """

    kind: AskEventKind
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None
    text: str | None = None
    answer: Answer | None = None


# Called on the library's own thread, in order; it must not block (hand the event over and return).
AskListener = Callable[[AskEvent], None]


class Note(BaseModel):
    """A fact the search agent kept while researching, with the items it rests on."""

    text: str
    item_ids: list[int]


class Answer(BaseModel):
    """The reply to a question, the sources it cites, and what it cost."""

    question: str
    text: str = Field(description="the answer with citations [file, p. N]; without a model, a notice")
    citations: list[Citation] = Field(
        default_factory=list, description="every source the text cites, resolved"
    )
    usage: Usage = Field(default_factory=Usage, description="model requests and tokens, research and answer")
    answer_usage: Usage = Field(default_factory=Usage, description="the answer step alone")
    elapsed: float = Field(0.0, description="seconds")
    model: str | None = Field(None, description="the model that answered; None: no LLM, evidence only")
    levels: list[Level] = Field(default_factory=list, description="levels searched")
    evidence: list[Evidence] = Field(
        default_factory=list, description="what the answer was written from, best first"
    )
    notes: list[Note] = Field(default_factory=list, description="facts the search agent kept")
    searches: list[str] = Field(default_factory=list, description="search terms the agent used")
    research: str | None = Field(None, description="the search agent's closing remark")
    partial: bool = Field(
        False, description="the research stopped at the budget; the answer uses what it found"
    )
    stopped: str | None = Field(None, description="why the research stopped early")

    @property
    def answered(self) -> bool:
        """Whether a model wrote the text (False: no LLM, the evidence is the result)."""
        return self.model is not None


def citation_of(item: Evidence) -> Citation:
    """The citation of one evidence item as it stands (the no-model result cites every item)."""
    return Citation(
        cite=item.cite,
        document=item.document,
        source=item.source,
        pages=item.pages,
        item_id=item.id,
        level=item.level,
        quote=item.clipped(QUOTE_CHARS).text,
    )


def levels_of(levels: Sequence[str] | str | None, default: Sequence[Level]) -> list[Level]:
    from .search import _levels

    if isinstance(levels, str):
        levels = [part.strip() for part in levels.split(",") if part.strip()]
    chosen = _levels(levels) if levels is not None else list(default)
    if not chosen:
        raise SearchError("no level to search")
    return chosen


async def ask(
    rt: Runtime,
    question: str,
    *,
    model: str | Model | None = None,
    levels: Sequence[str] | str | None = None,
    on_event: AskListener | None = None,
) -> Answer:
    """Answer ``question`` from the pyramid; see ``Pyramid.ask``. ``on_event`` receives ``AskEvent``s
    as the work goes on (research steps, the answer text as it is written, the answer)."""
    started = time.perf_counter()
    if not isinstance(question, str) or not question.strip():
        raise SearchError("ask needs a question")
    question = question.strip()
    chosen = levels_of(levels, rt.settings.ask_levels)
    spec = model if model is not None else rt.settings.model
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in {"", *EXTRACTIVE_NAMES}):
        if on_event is not None:
            on_event(AskEvent("tool_call", tool="search", args={"query": question}))
        answer = await evidence_only(rt, question, chosen)
        if on_event is not None:
            on_event(AskEvent("tool_result", tool="search", summary=f"{len(answer.evidence)} items"))
    else:
        from .agents.search_agent import research_and_answer

        answer = await research_and_answer(rt, question, model=spec, levels=chosen, on_event=on_event)
    answer.elapsed = time.perf_counter() - started
    if on_event is not None:
        on_event(AskEvent("answer", answer=answer))
    return answer


async def evidence_only(rt: Runtime, question: str, levels: list[Level]) -> Answer:
    """The no-model result: one hybrid search across ``levels`` (reranked when a reranker is
    configured), cut to the evidence budget. A pyramid with nothing above its pages (not distilled
    yet) would answer nothing; then its pages are searched, and the notice says so."""
    settings = rt.settings
    labels = Labels()
    items = await search_items(rt, question, levels=levels, k=settings.ask_evidence, labels=labels)
    text = NO_MODEL_TEXT
    searched = list(levels)
    if not items and "page" not in levels:
        items = await search_items(rt, question, levels=["page"], k=settings.ask_evidence, labels=labels)
        if items:
            text += " Nothing above the pages matched, so these are pages."
            searched.append("page")
    if not items:
        text = f"{NO_MODEL_TEXT} {NOTHING_FOUND}"
    chosen = select(items, limit=settings.ask_evidence, chars=settings.ask_evidence_chars)
    return Answer(
        question=question,
        text=text,
        citations=[citation_of(item) for item in chosen],
        levels=searched,
        evidence=chosen,
        searches=[question],
    )
