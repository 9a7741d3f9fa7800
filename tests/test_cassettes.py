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


# --- the answer step, from fixed evidence: the tool exchange versus the framed prompt ------------------

QUESTION = "Who founded Fernhollow Robotics, and when?"


def _pack() -> object:
    from pyramid.agents.answer import EvidencePack
    from pyramid.models import Evidence

    facts = [
        ("Jonas Ahl founded Fernhollow Robotics in 2019 in Tampere.", "[handbook.md, p. 1]", 1),
        ("The Software team is led by Priya Nair.", "[handbook.md, p. 2]", 2),
        ("The Picker P3 picks up to 1,100 apples per hour.", "[picker-p3-spec.pdf, p. 1]", 1),
    ]
    return EvidencePack(
        items=[
            Evidence(id=n, level="insight", text=t, cite=c, document=c[1:].split(",")[0], pages=[p])
            for n, (t, c, p) in enumerate(facts, 1)
        ]
    )


async def _answer(
    transport: object, framed: bool, base_url: str | None = None
) -> tuple[str | None, str | None]:
    """The answer step as ``ask`` runs it; (text, None) or (None, why it failed)."""
    from pydantic_ai.usage import RunUsage

    from pyramid.ask import AnswerFailed, Budget, write_answer

    settings = load_settings(request_timeout=600, answer_max_tokens=160, ask_answer_retries=1)
    model = chat_model(transport, base_url) if base_url else chat_model(transport)  # type: ignore[arg-type]
    try:
        text = await write_answer(
            QUESTION,
            _pack(),
            model,
            RunUsage(),
            Budget.from_settings(settings),
            settings,
            framed=framed,  # type: ignore[arg-type]
        )
    except AnswerFailed as failed:
        return None, failed.reason
    return text, None


@pytest.mark.skipif(not RECORD, reason="records only with PYRAMID_RECORD_CASSETTES=1")
async def test_record_the_answer_conversations(allow: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    from llama_server import missing, serve

    assert missing() is None, missing()
    with serve(log=tmp_path_factory.mktemp("llama") / "server.log") as server:
        for framed in (False, True):
            recording = Recording()
            await _answer(recording, framed, server.base_url)
            assert recording.save(f"answer_{'framed' if framed else 'tool'}_qwen05").exists()


@pytest.mark.skipif(RECORD, reason="recording instead")
async def test_a_real_small_model_answers_a_tool_exchange_with_json_and_a_framed_prompt_in_prose(
    allow: None,
) -> None:
    # What Qwen2.5-Coder-0.5B did when recorded: given the evidence as a tool result it wrote the
    # tool call back as JSON, twice; given it framed in the prompt it answered in prose (no
    # citation), and sent back, copied the feedback with its example citation. Each is caught.
    text, why = await _answer(Replay("answer_tool_qwen05"), framed=False)
    assert text is None and why == "the model wrote JSON (a tool call as text), not an answer"
    replay = Replay("answer_framed_qwen05")
    text, why = await _answer(replay, framed=True)
    assert text is None and why == "the model repeated the feedback instead of answering"
    assert "founded by Jonas Ahl" in replay.exchanges[0]["response"]["choices"][0]["message"]["content"]
    assert len(replay.used) == 2
