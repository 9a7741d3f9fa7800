"""``pyramid doctor --model M``: one tiny request of each kind the pipeline needs, sent to the model
as the pipeline sends it, with the answer judged the way the pipeline judges it.

- structured insight edits (what ``ingest`` needs), tried in each output mode until one works;
- a tool call (what the research agent of ``ask`` uses; without it ``ask`` answers from a search);
- a cited answer (what ``ask`` returns): plain text with a ``[file, p. N]`` citation.

Each check reports works/fails, the server's message, the mode that worked and its seconds, from
which a request timeout and a concurrency are suggested.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ModelError

if TYPE_CHECKING:
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings

    from .config import OutputMode, Settings

PAGE = "Alpha Corp makes red bicycles in Lyon. The factory opened in 1990."
CITATION = re.compile(r"\[notes\.md,\s*p\.\s*1\]")


@dataclass
class Check:
    kind: str  # "structured", "tool call", "cited answer"
    ok: bool
    seconds: float
    message: str = ""
    mode: str | None = None  # the output mode that worked (structured output)
    tried: list[str] = field(default_factory=list)  # "mode: why it failed" of modes that did not


@dataclass
class DoctorReport:
    model: str
    checks: list[Check]

    def check(self, kind: str) -> Check:
        return next(c for c in self.checks if c.kind == kind)

    @property
    def can_ingest(self) -> bool:
        return self.check("structured").ok

    @property
    def can_ask(self) -> bool:
        # Without tool calls ask researches with a plain search first; the answer is what counts.
        return self.check("cited answer").ok

    @property
    def ok(self) -> bool:
        return self.can_ingest and self.can_ask

    @property
    def slowest(self) -> float:
        return max((c.seconds for c in self.checks), default=0.0)

    @property
    def suggested_timeout(self) -> float:
        """A real window's prompt and answer are several times the tiny one's: 8x the slowest
        check, in whole tens of seconds, at least 30."""
        return float(max(30, math.ceil(self.slowest * 8 / 10) * 10))

    @property
    def suggested_concurrency(self) -> int:
        """Slow answers mean a local server computing one request at a time: do not queue more."""
        return 8 if self.slowest < 5 else 2 if self.slowest < 20 else 1

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "ok": self.ok,
            "ingest": self.can_ingest,
            "ask": self.can_ask,
            "checks": [c.__dict__ for c in self.checks],
            "suggested": {
                "request_timeout": self.suggested_timeout,
                "concurrency": self.suggested_concurrency,
                "output_mode": self.check("structured").mode,
            },
        }


def _modes(settings: Settings, model: Model) -> list[OutputMode]:
    from .agents.base import auto_mode

    if settings.output_mode != "auto":
        return [settings.output_mode]
    first = auto_mode(model)
    return [first, *(m for m in ("native", "prompted", "tool") if m != first)]


async def _timed(work: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = await work
    return result, time.perf_counter() - started


async def _structured(model: Model, settings: Settings, policy: Any) -> Check:
    from .agents.base import run_agent
    from .agents.insights import WindowDeps, build_insight_agent, content_words, window_prompt

    user = window_prompt("Notes", [(1, PAGE, False)], [], position=1, windows=2)
    deps = WindowDeps(pages=(1,), shown=frozenset(), words=frozenset(content_words(PAGE)))
    tried: list[str] = []
    seconds = 0.0
    for mode in _modes(settings, model):
        started = time.perf_counter()
        try:
            edits = await run_agent(
                build_insight_agent(mode),
                user,
                deps=deps,
                model=model,
                policy=policy,
                spent=lambda _usage: None,
                what=f"structured output ({mode})",
                max_tokens=settings.insights_max_tokens,
            )
        except ModelError as exc:
            seconds = max(seconds, time.perf_counter() - started)
            tried.append(f"{mode}: {exc}")
            continue
        took = time.perf_counter() - started
        seconds = max(seconds, took)
        if not edits.add:  # valid, but a document distilled like this would have no insight
            tried.append(f"{mode}: valid output without any insight from a page that states two facts")
            continue
        found = "; ".join(a.text for a in edits.add)
        return Check("structured", True, took, f"{len(edits.add)} insight(s): {found}", mode, tried)
    return Check("structured", False, seconds, tried[-1] if tried else "no mode to try", None, tried)


async def _tool_call(model: Model, settings: Settings) -> Check:
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import AgentRunError
    from pydantic_ai.messages import ToolCallPart

    agent: Agent[None, str] = Agent(
        instructions="Answer from the notes only. First call the `search` tool with a search term.",
        name="doctor_tool",
    )
    calls: list[str] = []

    @agent.tool_plain
    def search(term: str) -> str:
        """Search the notes for a term."""
        calls.append(term)
        return f"[notes.md, p. 1] {PAGE}"

    started = time.perf_counter()
    try:
        result = await agent.run(
            "Where does Alpha Corp make bicycles?",
            model=model,
            model_settings=_probe_settings(settings),
        )
    except (AgentRunError, TimeoutError) as exc:
        return Check("tool call", False, time.perf_counter() - started, _first_line(exc))
    took = time.perf_counter() - started
    made = [p for m in result.all_messages() for p in getattr(m, "parts", []) if isinstance(p, ToolCallPart)]
    if made and calls:
        return Check("tool call", True, took, f"called search({calls[0]!r})")
    text = str(result.output).strip().replace("\n", " ")[:120]
    return Check("tool call", False, took, f"no tool call; the model wrote: {text!r}")


def _probe_settings(settings: Settings) -> ModelSettings:
    """One try, the answer step's token cap and the configured deadline: a probe measures the model,
    it does not retry it."""
    return {
        "max_tokens": settings.answer_max_tokens,
        "request_timeout": settings.request_timeout,
        "max_retries": 0,
    }


async def _cited_answer(model: Model, settings: Settings) -> Check:
    from pydantic_ai import Agent
    from pydantic_ai.exceptions import AgentRunError

    agent: Agent[None, str] = Agent(
        instructions="Answer in one sentence from the evidence only, and cite it as [file, p. N].",
        name="doctor_answer",
    )
    started = time.perf_counter()
    try:
        result = await agent.run(
            f"Evidence:\n[notes.md, p. 1] {PAGE}\n\nQuestion: Where does Alpha Corp make bicycles?",
            model=model,
            model_settings=_probe_settings(settings),
        )
    except (AgentRunError, TimeoutError) as exc:
        return Check("cited answer", False, time.perf_counter() - started, _first_line(exc))
    took = time.perf_counter() - started
    text = str(result.output).strip().replace("\n", " ")
    if CITATION.search(text):
        return Check("cited answer", True, took, text[:160])
    return Check("cited answer", False, took, f"no [notes.md, p. 1] citation in {text[:120]!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def check_model(settings: Settings, spec: str | Model) -> DoctorReport:
    """Send the three tiny requests to ``spec`` and judge the answers (see the module docstring)."""
    from dataclasses import replace

    from .agents.base import CallPolicy, model_label, resolve_model

    model = resolve_model(spec)
    # One attempt per mode, one chance to fix invalid output: the doctor measures, it does not insist.
    policy = replace(CallPolicy.from_settings(settings), retries=0, output_retries=1)
    checks = [
        await _structured(model, settings, policy),
        await _tool_call(model, settings),
        await _cited_answer(model, settings),
    ]
    return DoctorReport(model_label(spec), checks)


def run_doctor(settings: Settings, spec: str | Model) -> DoctorReport:
    """``check_model`` from synchronous code (the CLI)."""
    import asyncio

    return asyncio.run(check_model(settings, spec))
