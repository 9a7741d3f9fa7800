"""PydanticAI stream events as ``AskEvent``s: the research agent's tool calls and results, and the
answer agent's text as it is written. Used only when someone listens (``ask(on_event=…)``): a run
with an event handler streams its model requests."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from pydantic_ai import RunContext
from pydantic_ai.messages import (
    AgentStreamEvent,
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartStartEvent,
    RetryPromptPart,
    TextPart,
    TextPartDelta,
)

from ..models import AskEvent, AskListener


def _summary(content: Any) -> str:
    if isinstance(content, list):
        return f"{len(content)} items"
    if isinstance(content, dict) and "item" in content:
        return f"{sum(len(v) for v in content.values() if isinstance(v, list))} neighbours"
    text = str(content)
    return text if len(text) <= 80 else text[:79] + "…"


def research_events(listen: AskListener) -> Any:
    async def handle(ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in events:
            if isinstance(event, FunctionToolCallEvent):
                args = event.part.args_as_dict() if event.args_valid is not False else {}
                listen(AskEvent("tool_call", tool=event.part.tool_name, args=args))
            elif isinstance(event, FunctionToolResultEvent):
                part = event.part
                summary = (
                    "retry: " + _summary(part.content)
                    if isinstance(part, RetryPromptPart)
                    else _summary(part.content)
                )
                listen(AskEvent("tool_result", tool=part.tool_name, summary=summary))

    return handle


def answer_events(listen: AskListener) -> Any:
    written = False

    async def handle(ctx: RunContext[Any], events: AsyncIterable[AgentStreamEvent]) -> None:
        nonlocal written
        async for event in events:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                if event.index == 0 and written:
                    # A new response after the validator sent the last one back: start over.
                    listen(AskEvent("reset"))
                    written = False
                if event.part.content:
                    listen(AskEvent("text", text=event.part.content))
                    written = True
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                if event.delta.content_delta:
                    listen(AskEvent("text", text=event.delta.content_delta))
                    written = True

    return handle
