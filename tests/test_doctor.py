"""`pyramid doctor`: each kind of request is judged as the pipeline judges it (scripted models)."""

from __future__ import annotations

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from pyramid.config import load_settings
from pyramid.doctor import check_model

pytestmark = [pytest.mark.unit, pytest.mark.anyio]


def _returned(messages: list[ModelMessage]) -> bool:
    return any(isinstance(p, ToolReturnPart) for m in messages for p in getattr(m, "parts", []))


def capable(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if info.output_tools:  # the insight edits
        edits = {
            "add": [{"text": "Alpha Corp makes red bicycles in Lyon.", "pages": [1]}],
            "revise": [],
            "delete": [],
        }
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, edits)])
    if info.function_tools and not _returned(messages):
        return ModelResponse(parts=[ToolCallPart("search", {"term": "Alpha Corp"})])
    return ModelResponse(parts=[TextPart("Alpha Corp makes them in Lyon [notes.md, p. 1].")])


def weak(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    if info.output_tools:
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {})])  # `{}`: invalid
    # Writes the tool call as text instead of making it, and never cites.
    return ModelResponse(parts=[TextPart('```json\n{"name": "search", "arguments": {"term": "Alpha"}}\n```')])


async def test_a_capable_model_passes_every_check() -> None:
    report = await check_model(load_settings(output_mode="tool"), FunctionModel(capable))
    assert [(c.kind, c.ok) for c in report.checks] == [
        ("structured", True),
        ("tool call", True),
        ("cited answer", True),
    ]
    assert report.check("structured").mode == "tool" and report.ok
    assert report.suggested_timeout >= 30 and report.suggested_concurrency == 8
    assert report.summary()["suggested"]["output_mode"] == "tool"


async def test_a_weak_model_fails_with_the_reason_for_each_check() -> None:
    report = await check_model(load_settings(output_mode="tool"), FunctionModel(weak))
    structured, tool, answer = report.checks
    assert not structured.ok and "tool: structured output (tool) failed" in structured.tried[0]
    assert not tool.ok and "no tool call" in tool.message
    assert not answer.ok and "citation" in answer.message
    assert not report.can_ingest and not report.can_ask and not report.ok
