"""The answer agent: gets the question as the user's prompt and the evidence as the result of an
``evidence`` tool call, so document text reaches the model only inside tool results (the channel
models treat as data), never in the instructions or in the user's turn. For a model that makes no
tool calls (retrieve-then-answer) the evidence comes after the question inside an ``<evidence>`` data
frame instead (``evidence_prompt``), as the distillers send pages: small local models imitate a tool
exchange they cannot make and answer with JSON, while they answer a framed prompt in prose. Its output validator resolves
every citation against that evidence and sends the answer back (``ModelRetry``) while one does not."""

from __future__ import annotations

import json
import re
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
from .base import EVIDENCE, frame, prompt

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
    last: str | None = None  # the last prose answer the model wrote, before its citations were checked
    problem: str | None = None  # what was wrong with the last answer, when it was sent back
    sent: list[str] = field(default_factory=list)  # what was sent back, in order


async def evidence(ctx: RunContext[AnswerDeps]) -> dict[str, Any]:
    """The notes and evidence gathered for the question, best first; cite items by their `cite`."""
    return ctx.deps.pack.brief()


def tool_call_text(text: str) -> bool:
    """Whether ``text`` is a JSON object or list (a tool call written as text, a schema echoed back)
    rather than prose: fenced or not."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").strip()
        if body[:4].lower() == "json":
            body = body[4:]
    body = body.strip()
    if not body or body[0] not in "{[":
        return False
    try:
        json.loads(body)
    except ValueError:
        return bool(TOOL_CALL_START.match(body))
    return True


TOOL_CALL_START = re.compile(r'^\{\s*"(name|tool|function|tool_calls|arguments)"\s*:')


def _retry(deps: AnswerDeps, problem: str, message: str) -> ModelRetry:
    """Send the answer back with ``message``; ``problem`` is what the result says if it stays."""
    deps.problem = problem
    deps.sent.append(message)
    return ModelRetry(message)


def _echoes(text: str, sent: list[str]) -> bool:
    """Whether ``text`` repeats a sentence of what was sent back to the model (a small model copies
    the feedback, example citation included, instead of following it)."""
    said = " ".join(text.lower().split())
    for message in sent:
        for sentence in message.lower().split(". "):
            words = sentence.split()
            if len(words) >= 5 and " ".join(words) in said:
                return True
    return False


async def _checked(ctx: RunContext[AnswerDeps], text: str) -> str:
    """An answer passes when it is prose (not a tool call or JSON written as text, not our feedback
    repeated), cites at least one evidence item and cites nothing that is not in the evidence;
    otherwise it goes back. ``last`` keeps the last prose answer, for what ``ask`` salvages."""
    deps = ctx.deps
    if not text.strip():
        raise _retry(
            deps,
            "the model wrote an empty answer",
            "The answer is empty. Answer the question in plain sentences, with citations.",
        )
    if tool_call_text(text):
        raise _retry(
            deps,
            "the model wrote JSON (a tool call as text), not an answer",
            "That is JSON, not an answer. You have the evidence already: answer the question in plain "
            "sentences, citing the items' `cite` strings.",
        )
    if _echoes(text, deps.sent):
        raise _retry(
            deps,
            "the model repeated the feedback instead of answering",
            "Do not repeat these messages. Answer the question itself, in your own sentences, citing "
            "the evidence items' `cite` strings.",
        )
    deps.last = text
    found = citations.check(text, deps.pack.items)
    if found.problems:
        raise _retry(
            deps,
            "the model kept citing sources that are not in the evidence: " + "; ".join(found.problems),
            "Some citations are not in the evidence: "
            + "; ".join(found.problems)
            + ". Cite only the `cite` strings of the evidence items, exactly as written, and only for "
            "what they say.",
        )
    if not found.citations:
        example = deps.pack.items[0].cite if deps.pack.items else "[file, p. N]"
        raise _retry(
            deps,
            "the model's answer cited nothing",
            "The answer cites nothing. Cite the evidence items it rests on with their `cite` strings, "
            f"for example {example}; if the evidence does not answer the question, say what is missing "
            "and cite the closest items.",
        )
    deps.problem = None
    return text


def build_answer_agent(*, framed: bool = False) -> Agent[AnswerDeps, str]:
    """The answer agent; ``framed``: the evidence is in the prompt (``evidence_prompt``), no tool."""
    agent: Agent[AnswerDeps, str] = Agent(
        output_type=str,
        deps_type=AnswerDeps,
        name="pyramid-answer",
        instructions=prompt("answer"),
        tools=[] if framed else [evidence],
    )
    agent.output_validator(_checked)
    return agent


def evidence_prompt(question: str, pack: EvidencePack) -> str:
    """The user's turn of a framed answer step: the question, then the evidence as JSON inside an
    ``<evidence>`` frame (escaped: nothing in it can close the frame)."""
    data = json.dumps(pack.brief(), ensure_ascii=False)
    return f"{question}\n\n{frame(EVIDENCE, data)}"


def evidence_history(question: str, pack: EvidencePack) -> list[ModelMessage]:
    """The answer step's conversation so far: the user's question, then the evidence as the result of
    an ``evidence`` call (the tool is registered, so a model may read it again)."""
    call = ToolCallPart(EVIDENCE_TOOL, {}, tool_call_id=EVIDENCE_CALL_ID)
    return [
        ModelRequest(parts=[UserPromptPart(question)]),
        ModelResponse(parts=[call]),
        ModelRequest(parts=[ToolReturnPart(EVIDENCE_TOOL, pack.brief(), tool_call_id=EVIDENCE_CALL_ID)]),
    ]
