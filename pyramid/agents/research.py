"""The research agent: turns a question into search terms and walks the pyramid with the tools of one
``ToolSession`` (``search``, ``expand``, ``note``); its text output is a closing remark. Every item a
tool shows is kept by the session, so nothing is lost when the budget stops the loop. It has no tool
that writes anything. The run itself (budget, what happens next) is ``pyramid.ask``'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic_ai import Agent, RunContext

from ..search.tools import toolset
from .base import prompt

if TYPE_CHECKING:
    from ..models import Level
    from ..search.tools import ToolSession

# The research agent's own k limit and default: its results are reranked and cut at the end anyway.
RESEARCH_MAX_K = 30
RESEARCH_K = 8


@dataclass
class ResearchDeps:
    """What the instructions say: the levels of the run and its budget (settings only)."""

    levels: list[Level]
    budget_requests: int
    budget_tokens: int


def _research_instructions(ctx: RunContext[ResearchDeps]) -> str:
    deps = ctx.deps
    # Only settings go into the instructions; nothing that came from a document.
    return prompt("search_agent").format(
        levels=", ".join(deps.levels), requests=deps.budget_requests, tokens=f"{deps.budget_tokens:,}"
    )


def build_research_agent(session: ToolSession) -> Agent[ResearchDeps, str]:
    """The agent, with ``session``'s tools (and ``note``): one agent per question, one label table."""
    return Agent(
        output_type=str,
        deps_type=ResearchDeps,
        name="pyramid-research",
        instructions=_research_instructions,
        toolsets=[toolset(session, note=True)],
        retries={"output": 1},
    )
