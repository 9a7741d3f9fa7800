"""A scripted PydanticAI model for the LLM distiller: a FunctionModel that recognises which agent is
asking (by its instructions), reads the prompt the distiller built, and answers like a model
would. Tests replace single behaviours (``on_window``, ``fail``) to script what they check."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

INPUT_TOKENS = 100  # every scripted answer reports this usage, so totals are exact
OUTPUT_TOKENS = 10

_AGENTS = {
    "You distill a document into insights": "insights",
    "You group the insights": "concepts",
    "You merge the concepts": "merge",
    "You write the abstract": "abstract",
    "You keep the recollections": "recollections",
}
_PAGE = re.compile(
    r"Page (\d+) \((first|second) reading[^)]*\):\s*<document_page page=\"\d+\">(.*?)</document_page>", re.S
)
_NUMBERED = re.compile(r"^(\d+)\. ", re.M)


@dataclass
class Call:
    agent: str
    prompt: str
    retry: str | None  # the problem sent back to the model, when this call is a retry
    started: float = 0.0  # perf_counter() when the call came in and when it was answered
    ended: float = 0.0


@dataclass
class Window:
    pages: list[tuple[int, bool, str]]  # (page, first reading, text)
    shown: list[int]  # insight numbers shown
    retry: str | None


def block(prompt: str, tag: str) -> str:
    match = re.search(rf"<{tag}[^>]*>(.*?)</{tag}>", prompt, re.S)
    return match.group(1) if match else ""


def default_window(window: Window) -> dict[str, Any]:
    """One insight per page on its first reading: its first sentence."""
    add = []
    for page, first, text in window.pages:
        if first:
            body = " ".join(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
            sentence = " ".join(
                re.split(r"(?<=[.!?])\s", body.strip())[0].split()[:20]
            )  # short, like a model
            if sentence:  # a page of headings only has nothing to say
                add.append({"text": sentence, "pages": [page]})
    return {"add": add, "revise": [], "delete": []}


@dataclass
class Scripted:
    on_window: Callable[[Window], dict[str, Any]] = default_window
    # (number, insight text) of a concept prompt → its answer; None: one concept of everything
    on_concepts: Callable[[list[tuple[int, str]]], dict[str, Any]] | None = None
    fail: Callable[[str, str], BaseException | None] | None = None  # (agent, prompt) → error to raise
    delay: float = 0.0
    complete: bool = True  # fill in the edit lists a window script leaves out
    calls: list[Call] = field(default_factory=list)

    def model(self, name: str = "scripted") -> FunctionModel:
        return FunctionModel(self, model_name=name)

    def windows(self) -> list[Call]:
        return [c for c in self.calls if c.agent == "insights"]

    def pages_read(self) -> list[tuple[int, bool]]:
        """(page, first reading) of every page shown to the insight agent, in call order."""
        return [(int(n), kind == "first") for c in self.windows() for n, kind, _ in _PAGE.findall(c.prompt)]

    async def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        agent = next(name for head, name in _AGENTS.items() if (info.instructions or "").startswith(head))
        prompt = next(
            part.content
            for m in messages
            if isinstance(m, ModelRequest)
            for part in m.parts
            if isinstance(part, UserPromptPart) and isinstance(part.content, str)
        )
        last = messages[-1]
        retry = next(
            (
                str(part.content)
                for part in getattr(last, "parts", [])
                if isinstance(part, ToolReturnPart) and getattr(part, "outcome", None) == "retried"
            ),
            None,
        )
        call = Call(agent, prompt, retry, started=time.perf_counter())
        self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        call.ended = time.perf_counter()
        if self.fail is not None and (error := self.fail(agent, prompt)) is not None:
            raise error
        output = self.answer(agent, prompt, retry)
        return ModelResponse(
            parts=[ToolCallPart(info.output_tools[0].name, output)],
            usage=RequestUsage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS),
        )

    def answer(self, agent: str, prompt: str, retry: str | None) -> dict[str, Any]:
        if agent == "insights":
            pages = [(int(n), kind == "first", text) for n, kind, text in _PAGE.findall(prompt)]
            shown = [int(n) for n in _NUMBERED.findall(block(prompt, "insights"))]
            answer = self.on_window(Window(pages, shown, retry))
            # Scripts name only the edits they make; a real model must send all three lists.
            return {"add": [], "revise": [], "delete": [], **answer} if self.complete else answer
        if agent == "concepts":
            numbers = [int(n) for n in _NUMBERED.findall(block(prompt, "insights"))]
            if self.on_concepts is not None:
                rows = [
                    (int(n), text)
                    for n, text in re.findall(r"^(\d+)\. (.*)$", block(prompt, "insights"), re.M)
                ]
                return self.on_concepts(rows)
            return {
                "concepts": [{"name": "Everything", "description": "All the insights.", "insights": numbers}]
            }
        if agent == "merge":
            numbers = [int(n) for n in _NUMBERED.findall(block(prompt, "concepts"))]
            return {"concepts": [{"name": "Merged", "description": "All parts.", "merges": numbers}]}
        if agent == "abstract":
            numbers = [int(n) for n in _NUMBERED.findall(block(prompt, "concepts"))]
            return {"text": "The document says things.", "concepts": numbers}
        return {"add": [], "revise": []}


def http_error(status: int = 503) -> ModelHTTPError:
    return ModelHTTPError(status, "scripted", body="scripted failure")
