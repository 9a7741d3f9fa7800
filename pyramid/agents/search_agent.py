"""The search agent: research the pyramid with tools, then answer from the reranked evidence.

Two agents, built by factories:

- **research** (tools ``search``, ``expand``, ``note``; text output = "done") turns the question into
  search terms and walks the pyramid. Every item a tool shows is kept in ``ResearchDeps.evidence``, so
  nothing is lost when the budget stops the loop. It has no tool that writes anything.
- **answer** gets the question as the user's prompt and the evidence as the result of an ``evidence``
  tool call: document text reaches the model only inside tool results, the channel models treat as
  data, never in the instructions or in the user's turn. An output validator resolves every citation
  against that evidence and sends the answer back (``ModelRetry``) while one does not resolve.

Budget: ``ask_request_limit`` / ``ask_token_limit`` bound the whole question (one ``RunUsage`` is shared
by both agents). Research runs under the limits less what the answer needs (``1 + ask_answer_retries``
requests and ``ask_answer_tokens`` tokens, at most half the token limit); when it hits them the answer
is written from what was found (``Answer.partial``). An answer step that runs out of budget, or keeps
citing what is not in the evidence, raises ``ModelError``: a half-written answer is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.exceptions import AgentRunError, UnexpectedModelBehavior, UsageLimitExceeded
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model
from pydantic_ai.usage import RunUsage, UsageLimits

from .. import citations
from ..ask import NOTHING_FOUND, Answer, AskListener, Note
from ..config import Level
from ..errors import ModelError, PyramidError
from ..evidence import TOOL_TEXT_CHARS, Evidence, Labels, expand_item, rank, search_items, select
from ..models import Usage
from .base import _usage, model_label, prompt, resolve_model
from .stream import answer_events, research_events

if TYPE_CHECKING:
    from ..config import Settings
    from ..runtime import Runtime

MAX_TOOL_K = 30
EVIDENCE_TOOL = "evidence"
EVIDENCE_CALL_ID = "pyramid_evidence"


@dataclass
class ResearchDeps:
    """What the research tools work with, and everything they found."""

    rt: Runtime
    question: str
    levels: list[Level]
    budget_requests: int
    budget_tokens: int
    labels: Labels = field(default_factory=Labels)
    evidence: dict[int, Evidence] = field(default_factory=dict)  # every item a tool showed, first seen first
    notes: list[Note] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)

    def keep(self, items: list[Evidence]) -> None:
        for item in items:
            self.evidence.setdefault(item.id, item)


class EvidencePack(BaseModel):
    """What the answer step reads: the research notes and the evidence, best first."""

    notes: list[Note] = Field(default_factory=list)
    items: list[Evidence] = Field(default_factory=list)

    def brief(self) -> dict[str, Any]:
        """As the model reads it (see ``Evidence.brief``); no notes, no ``notes`` key."""
        items = {"items": [item.brief() for item in self.items]}
        return {"notes": [note.model_dump() for note in self.notes], **items} if self.notes else items


@dataclass
class AnswerDeps:
    pack: EvidencePack
    rejected: list[str] = field(default_factory=list)  # the last citations sent back, for the error


# --- the research agent ------------------------------------------------------------------------------


async def search(
    ctx: RunContext[ResearchDeps], query: str, levels: list[Level] | None = None, k: int = 8
) -> list[dict[str, Any]]:
    """Search the pyramid (keywords and meaning together) and get the best items, best first.

    Args:
        query: a few words: names, numbers, key terms, or a paraphrase of what you look for.
        levels: levels to search (default: every level this run may search).
        k: how many items to return (1-30).
    """
    deps = ctx.deps
    chosen = levels or deps.levels
    outside = [level for level in chosen if level not in deps.levels]
    if outside:
        raise ModelRetry(
            f"this run does not search {', '.join(outside)}; levels you may search: {', '.join(deps.levels)}"
        )
    if not 1 <= k <= MAX_TOOL_K:
        raise ModelRetry(f"k must be between 1 and {MAX_TOOL_K}")
    if not query.strip():
        raise ModelRetry("the query is empty; search for a few words")
    # No cross-encoder here: the gathered evidence is reranked once, against the question, at the end.
    found = await search_items(deps.rt, query, levels=chosen, k=k, labels=deps.labels, rerank=False)
    deps.searches.append(query)
    deps.keep(found)
    return [item.brief(TOOL_TEXT_CHARS) for item in found]


async def expand(ctx: RunContext[ResearchDeps], item_id: int) -> dict[str, Any]:
    """Walk the pyramid from one item: an insight's page(s), concepts and document abstract; a
    concept's insights; an abstract's concepts; a recollection's sources; a page's insights.

    Args:
        item_id: the id of an item a search or an earlier expand returned.
    """
    try:
        found = await expand_item(ctx.deps.rt, item_id, ctx.deps.labels)
    except PyramidError as exc:  # unknown id: the model can pick another
        raise ModelRetry(str(exc)) from None
    ctx.deps.keep([found.item, *found.neighbours()])
    return found.brief(TOOL_TEXT_CHARS)


async def note(ctx: RunContext[ResearchDeps], text: str, item_ids: list[int]) -> str:
    """Keep a fact that helps answer the question, with the ids of the items it rests on. The answer
    is written from your notes and the evidence.

    Args:
        text: the fact, in one or two sentences.
        item_ids: ids of the items (from search or expand) that say it.
    """
    if not text.strip():
        raise ModelRetry("the note is empty")
    if not item_ids:
        raise ModelRetry("name the ids of the items the note rests on")
    unseen = [i for i in item_ids if i not in ctx.deps.evidence]
    if unseen:
        raise ModelRetry(
            f"items {unseen} were not returned by search or expand; note only items you have seen"
        )
    ctx.deps.notes.append(Note(text=text.strip(), item_ids=list(dict.fromkeys(item_ids))))
    return f"noted ({len(ctx.deps.notes)} so far)"


def _research_instructions(ctx: RunContext[ResearchDeps]) -> str:
    deps = ctx.deps
    # Only settings go into the instructions; nothing that came from a document.
    return prompt("search_agent").format(
        levels=", ".join(deps.levels), requests=deps.budget_requests, tokens=f"{deps.budget_tokens:,}"
    )


def build_research_agent() -> Agent[ResearchDeps, str]:
    return Agent(
        output_type=str,
        deps_type=ResearchDeps,
        name="pyramid-research",
        instructions=_research_instructions,
        tools=[search, expand, note],
        retries={"tools": 2, "output": 1},
    )


# --- the answer agent --------------------------------------------------------------------------------


async def evidence(ctx: RunContext[AnswerDeps]) -> dict[str, Any]:
    """The notes and evidence gathered for the question, best first; cite items by their `cite`."""
    return ctx.deps.pack.brief()


async def _citations_resolve(ctx: RunContext[AnswerDeps], text: str) -> str:
    problems = citations.check(text, ctx.deps.pack.items).problems
    ctx.deps.rejected = problems
    if problems:
        raise ModelRetry(
            "Some citations are not in the evidence: "
            + "; ".join(problems)
            + ". Cite only the `cite` strings of the evidence items, exactly as written, and only for what they say."
        )
    return text


def build_answer_agent() -> Agent[AnswerDeps, str]:
    agent = Agent(
        output_type=str,
        deps_type=AnswerDeps,
        name="pyramid-answer",
        instructions=prompt("answer"),
        tools=[evidence],
    )
    agent.output_validator(_citations_resolve)
    return agent


def evidence_history(question: str, pack: EvidencePack) -> list[ModelMessage]:
    """The answer step's conversation so far: the user's question, then the evidence as the result of
    an ``evidence`` call (the tool is registered, so a model may read it again)."""
    call = ToolCallPart(EVIDENCE_TOOL, {}, tool_call_id=EVIDENCE_CALL_ID)
    return [
        ModelRequest(parts=[UserPromptPart(question)]),
        ModelResponse(parts=[call]),
        ModelRequest(parts=[ToolReturnPart(EVIDENCE_TOOL, pack.brief(), tool_call_id=EVIDENCE_CALL_ID)]),
    ]


# --- one question, both phases -----------------------------------------------------------------------


def _model_settings(settings: Settings) -> dict[str, Any]:
    return {"request_timeout": settings.request_timeout, "max_retries": settings.retries}


@dataclass(frozen=True)
class Budget:
    requests: int
    tokens: int
    research_requests: int
    research_tokens: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        requests, tokens = settings.ask_request_limit, settings.ask_token_limit
        reserve = min(settings.ask_answer_tokens, tokens // 2)
        return cls(requests, tokens, max(1, requests - 1 - settings.ask_answer_retries), tokens - reserve)


async def research_and_answer(
    rt: Runtime,
    question: str,
    *,
    model: str | Model,
    levels: list[Level],
    on_event: AskListener | None = None,
) -> Answer:
    settings = rt.settings
    llm = resolve_model(model)
    budget = Budget.from_settings(settings)
    usage = RunUsage()
    deps = ResearchDeps(rt, question, levels, budget.research_requests, budget.research_tokens)
    answer = Answer(question=question, text="", model=model_label(model), levels=levels)
    try:
        research = await build_research_agent().run(
            question,
            deps=deps,
            model=llm,
            usage=usage,
            usage_limits=UsageLimits(
                request_limit=budget.research_requests, total_tokens_limit=budget.research_tokens
            ),
            model_settings=_model_settings(settings),
            event_stream_handler=research_events(on_event) if on_event else None,
        )
        answer.research = research.output.strip() or None
    except UsageLimitExceeded as exc:
        answer.partial, answer.stopped = True, f"the research reached its budget: {_first_line(exc)}"
    except AgentRunError as exc:
        raise ModelError(f"the search agent failed: {_first_line(exc)}") from exc
    research_usage = _usage(usage)
    answer.notes, answer.searches = deps.notes, deps.searches
    if not deps.evidence:
        # The model found nothing or never searched: fall back to a search for the question itself,
        # so the answer is never written from nothing while the pyramid holds something.
        deps.keep(
            await search_items(rt, question, levels=levels, k=settings.ask_evidence, labels=deps.labels)
        )
    noted = {i for n in deps.notes for i in n.item_ids}
    # Pages only when asked: a page an expand showed informs the research, but the answer is written
    # from the levels of the run (that is the pyramid's saving), unless the agent noted the page.
    gathered = [e for e in deps.evidence.values() if e.level in levels or e.id in noted]
    ranked = await rank(rt, question, gathered, first=noted)
    pack = EvidencePack(
        notes=deps.notes, items=select(ranked, limit=settings.ask_evidence, chars=settings.ask_evidence_chars)
    )
    answer.evidence = pack.items
    if not pack.items:
        answer.text = NOTHING_FOUND
    else:
        answer.text = await _answer(question, pack, llm, usage, budget, settings, on_event)
        answer.citations = citations.check(answer.text, pack.items).citations
    answer.usage = _usage(usage)
    answer.answer_usage = Usage(
        requests=answer.usage.requests - research_usage.requests,
        input_tokens=answer.usage.input_tokens - research_usage.input_tokens,
        output_tokens=answer.usage.output_tokens - research_usage.output_tokens,
    )
    return answer


async def _answer(
    question: str,
    pack: EvidencePack,
    llm: Model,
    usage: RunUsage,
    budget: Budget,
    settings: Settings,
    on_event: AskListener | None = None,
) -> str:
    deps = AnswerDeps(pack)
    try:
        result = await build_answer_agent().run(
            None,
            message_history=evidence_history(question, pack),
            deps=deps,
            model=llm,
            usage=usage,
            usage_limits=UsageLimits(request_limit=budget.requests, total_tokens_limit=budget.tokens),
            retries={"output": settings.ask_answer_retries},
            model_settings=_model_settings(settings),
            event_stream_handler=answer_events(on_event) if on_event else None,
        )
    except UsageLimitExceeded as exc:
        raise ModelError(
            f"the answer ran out of budget ({_first_line(exc)}); raise ask_token_limit or ask_request_limit"
        ) from exc
    except UnexpectedModelBehavior as exc:
        if deps.rejected:
            raise ModelError(
                "the model kept citing sources that are not in the evidence: " + "; ".join(deps.rejected)
            ) from exc
        raise ModelError(f"the answer step failed: {_first_line(exc)}") from exc
    except AgentRunError as exc:
        raise ModelError(f"the answer step failed: {_first_line(exc)}") from exc
    return result.output.strip()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
