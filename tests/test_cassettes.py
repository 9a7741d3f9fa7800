"""Real model behaviour in the default suite: conversations recorded once from llama.cpp's server
with Qwen2.5-Coder-0.5B (``tests/cassettes/``), replayed here without the server. They pin what a
small local model really does, and the pipeline must judge it the way it judges any model."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cassette import CASSETTES, Recording, Replay, chat_model
from pydantic_ai.models import override_allow_model_requests

from pyramid.config import load_settings
from pyramid.doctor import check_model

pytestmark = [pytest.mark.unit, pytest.mark.anyio]
RECORD = os.environ.get("PYRAMID_RECORD_CASSETTES") == "1"


@pytest.fixture
def allow() -> Iterator[None]:
    # The replayed model is reached through the cassette's transport, never the network.
    with override_allow_model_requests(True):
        yield


async def _doctor(transport: object, base_url: str | None = None) -> object:
    settings = load_settings(request_timeout=600, insights_max_tokens=256, answer_max_tokens=128)
    model = chat_model(transport, base_url) if base_url else chat_model(transport)  # type: ignore[arg-type]
    return await check_model(settings, model)


@pytest.mark.skipif(not RECORD, reason="records only with PYRAMID_RECORD_CASSETTES=1")
async def test_record_the_doctor_conversation(allow: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    from llama_server import missing, serve

    assert missing() is None, missing()
    with serve(log=tmp_path_factory.mktemp("llama") / "server.log") as server:
        recording = Recording()
        await _doctor(recording, server.base_url)
        assert recording.save("doctor_qwen05").exists()


@pytest.mark.skipif(RECORD, reason="recording instead")
async def test_the_doctor_judges_a_real_small_model(allow: None) -> None:
    assert (CASSETTES / "doctor_qwen05.json").exists()
    report = await _doctor(Replay("doctor_qwen05"))
    structured, tool, answer = report.checks  # type: ignore[attr-defined]
    # What Qwen2.5-Coder-0.5B did when recorded: valid JSON-schema output without any insight, then
    # output that stayed invalid in prompted and tool mode; prose instead of a tool call; and the
    # citation template copied ("[file, p. 1]") instead of the source's name.
    assert not structured.ok and [t.split(":")[0] for t in structured.tried] == ["native", "prompted", "tool"]
    assert "without any insight" in structured.tried[0]
    assert not tool.ok and "no tool call" in tool.message
    assert not answer.ok and "citation" in answer.message
    assert not report.ok  # type: ignore[attr-defined]
