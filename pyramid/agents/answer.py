"""The answer agent: gets the question as the user's prompt and the evidence as the result of an
``evidence`` tool call, so document text reaches the model only inside tool results (the channel
models treat as data), never in the instructions or in the user's turn. Its output validator resolves
every citation against that evidence and sends the answer back (``ModelRetry``) while one does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from ..models import Evidence, Note
from ..search import citations
from .base import prompt

EVIDENCE_TOOL = "evidence"
EVIDENCE_CALL_ID = "pyramid_evidence"


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
    agent: Agent[AnswerDeps, str] = Agent(
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
