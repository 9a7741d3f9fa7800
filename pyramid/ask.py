"""Answering a question: ``ask`` and its orchestration (research, budget, answer).

With a model, the research agent (``pyramid.agents.research``) walks the pyramid with the tools of one
``ToolSession``, then the answer agent (``pyramid.agents.answer``) writes a cited answer from the
reranked evidence; ``answer_with_model`` is where the two meet (``Research`` is what the first hands
the second). Without a model, ``ask`` is still useful and never an error: it returns the best evidence
for the question across levels, each item with its citation, and says that no LLM is configured.

Budget: ``ask_request_limit`` / ``ask_token_limit`` bound the whole question (one ``RunUsage`` is shared
by both agents). Research runs under the limits less what the answer needs (``1 + ask_answer_retries``
requests and ``ask_answer_tokens`` tokens, at most half the token limit); when it hits them the answer
is written from what was found (``Answer.partial``).

A weak model costs quality, never the answer: research that misbehaves stops (``stopped``); a model
that makes no tool call, or refuses tools, gets retrieve-then-answer (a search for the question and
its key terms; ``notices``); an answer step that runs out of budget or keeps citing what is not in the
evidence returns its last text without the citations that do not resolve (``rejected_citations``), or,
when nothing cited remains, the evidence itself with its citations. ``ModelError`` only when the model
cannot be reached at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .distill import EXTRACTIVE_NAMES
from .errors import ModelError, SearchError
from .models import QUOTE_CHARS, Answer, AskEvent, AskListener, Citation, Evidence, Level, Note, Usage
from .search.evidence import Labels, rank, search_items, select
from .store import retrieval
from .text.words import key_terms

if TYPE_CHECKING:
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.usage import RunUsage

    from .agents.answer import EvidencePack
    from .config import OutputMode, Settings
    from .runtime import Runtime

__all__ = ["Answer", "AskEvent", "AskListener", "Note", "ask"]

NO_MODEL_TEXT = (
    "No LLM is configured (set PYRAMID_MODEL or pass --model), so this is not an answer: it is the best "
    "evidence for the question across levels, best first, each with its citation."
)
NOTHING_FOUND = "Nothing in the pyramid matches the question."
NOTHING_RELEVANT = (
    "Nothing relevant was found: the best evidence is only loosely related to the question (similarity "
    "{best:.2f}, below ask_min_score {threshold:.2f})."
)


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
    from .search.hybrid import _levels

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
    output_mode: OutputMode | None = None,
    on_event: AskListener | None = None,
    rerank: bool | str | None = None,
) -> Answer:
    """Answer ``question`` from the pyramid; see ``Pyramid.ask``. ``on_event`` receives ``AskEvent``s
    as the work goes on (research steps, the answer text as it is written, the answer)."""
    import dataclasses

    from .search.rerank import locate_reranker, resolve_reranker

    started = time.perf_counter()
    if not isinstance(question, str) or not question.strip():
        raise SearchError("ask needs a question")
    question = question.strip()
    chosen = levels_of(levels, rt.settings.ask_levels)
    reranker = resolve_reranker(rerank, rt.settings.reranker)
    if reranker != rt.settings.reranker:
        rt = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"reranker": reranker}))
    if reranker:  # a reranker that cannot load fails now, not after the research
        await asyncio.to_thread(locate_reranker, reranker)
    spec = model if model is not None else rt.settings.model
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in {"", *EXTRACTIVE_NAMES}):
        if on_event is not None:
            on_event(AskEvent("tool_call", tool="search", args={"query": question}))
        answer = await evidence_only(rt, question, chosen)
        if on_event is not None:
            on_event(AskEvent("tool_result", tool="search", summary=f"{len(answer.evidence)} items"))
    else:
        answer = await answer_with_model(
            rt, question, model=spec, levels=chosen, output_mode=output_mode, on_event=on_event
        )
    await with_trails(rt, answer.citations)
    answer.elapsed = time.perf_counter() - started
    if on_event is not None:
        on_event(AskEvent("answer", answer=answer))
    return answer


async def with_trails(rt: Runtime, citations: list[Citation]) -> None:
    """A ``[recollection N]`` names no file, so its quote gets the files behind it (its audit trail):
    "… (from handbook.md, news.rss)"."""
    from pathlib import PurePath

    from .store import learned

    ids = [c.item_id for c in citations if c.level == "recollection"]
    if not ids:
        return
    async with rt.db.connection() as conn:
        trails = await learned.sources(conn, ids)
    for citation in citations:
        rows = trails.get(citation.item_id) if citation.level == "recollection" else None
        files = [PurePath(r["path"] or r["source"]).name for r in rows or [] if r["path"] or r["source"]]
        if files:
            citation.quote = f"{citation.quote} (from {', '.join(dict.fromkeys(files))})"


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
    items, relevance = await _by_relevance(rt, question, items)
    if relevance is not None and relevance < settings.ask_min_score:
        text += " " + NOTHING_RELEVANT.format(best=relevance, threshold=settings.ask_min_score)
    chosen = select(items, limit=settings.ask_evidence, chars=settings.ask_evidence_chars)
    return Answer(
        question=question,
        text=text,
        citations=[citation_of(item) for item in chosen],
        levels=searched,
        evidence=chosen,
        searches=[question],
        relevance=relevance,
    )


async def _by_relevance(
    rt: Runtime, question: str, items: list[Evidence]
) -> tuple[list[Evidence], float | None]:
    """The items in the order to show them, and the highest cosine similarity of one of them to the
    question: unlike fused or rerank scores it is comparable across questions, so a low one means
    nothing relevant was found (calibrated by benchmarks/ask_threshold.py).

    Fused scores are scaled within each level, so the top concept, abstract and recollection all tie
    with the top insight and used to come before it; adding the similarity to the question orders
    the levels against each other and keeps the hybrid order within a level. A reranker's scores
    are comparable across levels already: its order stays."""
    if not items:
        return items, None
    embedding = (await rt.embedder.aencode_queries([question]))[0]
    async with rt.db.connection() as conn:
        cosine = await retrieval.similarity(conn, [item.id for item in items], embedding)
    if not rt.settings.reranker:
        items = sorted(items, key=lambda item: -((item.score or 0.0) + cosine.get(item.id, 0.0)))
    return items, max(cosine.values(), default=0.0)


# --- with a model: research, then the answer -------------------------------------------------------


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


@dataclass
class Research:
    """What the research step hands the answer step: every item its tools showed (first seen
    first), its notes and searches, its closing remark, why it stopped early (the budget, a model
    that misbehaved) and what it did instead of research (``notice``)."""

    evidence: dict[int, Evidence] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    remark: str | None = None
    stopped: str | None = None
    notice: str | None = None
    usage: Usage = field(default_factory=Usage)

    def keep(self, items: list[Evidence]) -> None:
        for item in items:
            self.evidence.setdefault(item.id, item)


RETRIEVED = "the answer is written from a search for the question and its key terms"


async def retrieve(
    rt: Runtime,
    question: str,
    found: Research,
    *,
    levels: list[Level],
    labels: Labels,
    on_event: AskListener | None = None,
) -> Research:
    """Retrieve-then-answer, for a model that cannot (or did not) walk the pyramid with tools: one
    search for the question and one for its key terms, their items added to ``found``."""
    terms = " ".join(key_terms(question))
    queries = [question, *([terms] if terms and terms.lower() != question.lower() else [])]
    for query in queries:
        if on_event is not None:
            on_event(AskEvent("tool_call", tool="search", args={"query": query}))
        items = await search_items(rt, query, levels=levels, k=rt.settings.ask_evidence, labels=labels)
        if on_event is not None:
            on_event(AskEvent("tool_result", tool="search", summary=f"{len(items)} items"))
        found.keep(items)
        found.searches.append(query)
    return found


async def research(
    rt: Runtime,
    question: str,
    *,
    llm: Model,
    levels: list[Level],
    usage: RunUsage,
    budget: Budget,
    on_event: AskListener | None = None,
) -> Research:
    """Let the research agent walk the pyramid within the research budget. Whatever happens to the
    agent, what its tools showed is kept: a budget reached or a model that misbehaves (tool retries
    exhausted, an output it cannot fix) stops the research (``stopped``), and a model that makes no
    tool call, or whose server refuses tools, gets the retrieve-then-answer path (``notice``). Only a
    model that cannot be reached at all is an error (``ModelError``)."""
    from pydantic_ai.exceptions import AgentRunError, UsageLimitExceeded
    from pydantic_ai.usage import UsageLimits

    from .agents.base import _describe, _usage, rejected_shape
    from .agents.research import RESEARCH_K, RESEARCH_MAX_K, ResearchDeps, build_research_agent
    from .agents.stream import research_events
    from .search.tools import ToolSession

    found = Research()
    # No cross-encoder per search: the gathered evidence is reranked once, against the question.
    session = ToolSession(
        rt, levels=levels, max_k=RESEARCH_MAX_K, default_k=RESEARCH_K, rerank=False, on_found=found.keep
    )
    deps = ResearchDeps(levels, budget.research_requests, budget.research_tokens)
    refused: str | None = None
    try:
        result = await build_research_agent(session).run(
            question,
            deps=deps,
            model=llm,
            usage=usage,
            usage_limits=UsageLimits(
                request_limit=budget.research_requests, total_tokens_limit=budget.research_tokens
            ),
            model_settings=_model_settings(rt.settings),
            event_stream_handler=research_events(on_event) if on_event else None,
        )
        found.remark = result.output.strip() or None
    except UsageLimitExceeded as exc:
        found.stopped = f"the research reached its budget: {_first_line(exc)}"
    except AgentRunError as exc:
        raise_if_unreachable(exc, usage)
        if rejected_shape(exc):
            refused = _describe(exc)
        else:
            found.stopped = f"the research stopped, the model misbehaved: {_brief(_describe(exc))}"
    found.notes, found.searches, found.usage = session.notes, session.searches, _usage(usage)
    if refused is not None:
        found.notice = f"The model refused the research tools ({refused}): {RETRIEVED}."
    elif not session.searches and not session.seen and found.stopped is None:
        found.notice = f"The model made no tool call: {RETRIEVED}."
    if found.notice is not None or not found.evidence:
        # Never write the answer from nothing while the pyramid holds something.
        await retrieve(rt, question, found, levels=levels, labels=session.labels, on_event=on_event)
    return found


async def answer_with_model(
    rt: Runtime,
    question: str,
    *,
    model: str | Model,
    levels: list[Level],
    output_mode: OutputMode | None = None,
    on_event: AskListener | None = None,
) -> Answer:
    """Research (or retrieve), then write the answer from the reranked evidence (see the module's
    docstring). An answer step that fails is salvaged (``salvage``), never raised."""
    from pydantic_ai.usage import RunUsage

    from .agents.answer import EvidencePack
    from .agents.base import _usage, model_label, resolve_model
    from .search.citations import check

    settings = rt.settings
    llm = resolve_model(model)
    budget = Budget.from_settings(settings)
    usage = RunUsage()
    mode = output_mode or settings.output_mode
    if mode in ("native", "prompted"):
        # A model asked for plain structured output is not asked to call tools either.
        found = Research(notice=f"output_mode {mode}: no research with tools; {RETRIEVED}.")
        await retrieve(rt, question, found, levels=levels, labels=Labels(), on_event=on_event)
    else:
        found = await research(
            rt, question, llm=llm, levels=levels, usage=usage, budget=budget, on_event=on_event
        )
    answer = Answer(
        question=question,
        text="",
        model=model_label(model),
        levels=levels,
        notes=found.notes,
        searches=found.searches,
        research=found.remark,
        partial=found.stopped is not None,
        stopped=found.stopped,
        notices=[found.notice] if found.notice else [],
    )
    noted = {i for n in found.notes for i in n.item_ids}
    # Pages only when asked: a page an expand showed informs the research, but the answer is written
    # from the levels of the run (that is the pyramid's saving), unless the agent noted the page.
    gathered = [e for e in found.evidence.values() if e.level in levels or e.id in noted]
    ranked = await rank(rt, question, gathered, first=noted)
    pack = EvidencePack(
        notes=found.notes,
        items=select(ranked, limit=settings.ask_evidence, chars=settings.ask_evidence_chars),
    )
    answer.evidence = pack.items
    if not pack.items:
        answer.text = NOTHING_FOUND
    else:
        try:
            framed = found.notice is not None  # a model that made no tool call gets no tool exchange
            answer.text = await write_answer(
                question, pack, llm, usage, budget, settings, on_event, framed=framed
            )
            answer.citations = check(answer.text, pack.items).citations
        except AnswerFailed as failed:
            salvage(answer, failed)
            if on_event is not None:
                on_event(AskEvent("reset", summary=answer.stopped))
    answer.usage = _usage(usage)
    answer.answer_usage = Usage(
        requests=answer.usage.requests - found.usage.requests,
        input_tokens=answer.usage.input_tokens - found.usage.input_tokens,
        output_tokens=answer.usage.output_tokens - found.usage.output_tokens,
    )
    return answer


class AnswerFailed(Exception):
    """The answer step gave no answer that passed its checks: ``reason`` says why, ``last`` is the
    last text the model wrote (None when it wrote none)."""

    def __init__(self, reason: str, last: str | None) -> None:
        super().__init__(reason)
        self.reason, self.last = reason, last


def salvage(answer: Answer, failed: AnswerFailed) -> None:
    """What is left of a failed answer step (``answer.partial``, ``stopped`` says why): the model's
    last text with the citations that do not resolve taken out (``rejected_citations``) when what
    remains still cites the evidence; otherwise the evidence itself, each item with its citation."""
    from .agents.answer import tool_call_text
    from .search.citations import check, without_rejected

    answer.partial = True
    answer.stopped = f"{answer.stopped}; {failed.reason}" if answer.stopped else failed.reason
    last = failed.last
    if last and not tool_call_text(last):
        cleaned, rejected = without_rejected(last, answer.evidence)
        cited = check(cleaned, answer.evidence).citations
        if cited:
            answer.text, answer.citations, answer.rejected_citations = cleaned, cited, rejected
            return
    answer.text = (
        f"The model's answer could not be used ({failed.reason}), so this is the evidence it was to be "
        "written from, best first, each with its citation."
    )
    answer.citations = [citation_of(item) for item in answer.evidence]


async def write_answer(
    question: str,
    pack: EvidencePack,
    llm: Model,
    usage: RunUsage,
    budget: Budget,
    settings: Settings,
    on_event: AskListener | None = None,
    *,
    framed: bool = False,
) -> str:
    """The answer step: the answer agent writes from ``pack`` within what is left of the budget;
    ``framed``: the evidence follows the question in a data frame instead of a tool result.
    Raises ``AnswerFailed`` when no answer passes the checks, ``ModelError`` when the model cannot
    be reached at all."""
    from pydantic_ai.exceptions import AgentRunError, UsageLimitExceeded
    from pydantic_ai.usage import UsageLimits

    from .agents.answer import AnswerDeps, build_answer_agent, evidence_history, evidence_prompt
    from .agents.base import _describe
    from .agents.stream import answer_events

    deps = AnswerDeps(pack)
    try:
        result = await build_answer_agent(framed=framed).run(
            evidence_prompt(question, pack) if framed else None,
            message_history=None if framed else evidence_history(question, pack),
            deps=deps,
            model=llm,
            usage=usage,
            usage_limits=UsageLimits(request_limit=budget.requests, total_tokens_limit=budget.tokens),
            retries={"output": settings.ask_answer_retries},
            model_settings=_model_settings(settings),
            event_stream_handler=answer_events(on_event) if on_event else None,
        )
    except UsageLimitExceeded as exc:
        raise AnswerFailed(
            f"the answer ran out of budget ({_first_line(exc)}); raise ask_token_limit or ask_request_limit",
            deps.last,
        ) from exc
    except AgentRunError as exc:
        raise_if_unreachable(exc, usage)
        reason = deps.problem or f"the answer step failed: {_brief(_describe(exc))}"
        raise AnswerFailed(reason, deps.last) from exc
    return result.output.strip()


def raise_if_unreachable(exc: BaseException, usage: RunUsage) -> None:
    """``ModelError`` when ``exc`` says the model cannot be used and no request of the question got
    through: the one failure ``ask`` does not turn into a partial answer."""
    if unreachable(exc) and not usage.requests:
        from .agents.base import _describe

        raise ModelError(f"the model could not be reached: {_describe(exc)}") from exc


def unreachable(exc: BaseException) -> bool:
    """A model that cannot be used at all: no connection (not a timeout: a slow model is slow, not
    gone), credentials refused, no such model, quota exhausted."""
    from pydantic_ai.exceptions import (
        ModelAuthenticationError,
        ModelConnectionError,
        ModelNotFoundError,
        ModelQuotaExceededError,
        ModelTimeoutError,
    )

    if isinstance(exc, ModelTimeoutError):
        return False
    return isinstance(
        exc, (ModelConnectionError, ModelAuthenticationError, ModelNotFoundError, ModelQuotaExceededError)
    )


def _model_settings(settings: Settings) -> ModelSettings:
    return {
        "request_timeout": settings.request_timeout,
        "max_retries": settings.retries,
        "max_tokens": settings.answer_max_tokens,
    }


def _brief(text: str) -> str:
    """A library's message without its advice ("Tool 'note' exceeded max retries count of 2.
    Consider raising the retry limit, or see …" → its first sentence)."""
    first, dot, rest = text.partition(". ")
    return first + "." if dot and rest else text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
