"""``pyramid ask`` in text and --json, with and without a model, and ``pyramid mcp``'s place in the CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ask_helpers import call, ingest_examples, item_id, scripted, text, tool_returns
from conftest import run_cli
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo

QUESTION = "When does the Holm Orchards pilot start?"
CITE = "[meeting-notes-2031-03-03.txt, p. 1]"
START = "Lucia Berg confirmed that the Holm Orchards pilot starts on 14 April"


@pytest.fixture(scope="module")
def ids(kp: Any) -> dict[str, int]:
    return ingest_examples(kp)


def test_help_lists_ask_and_mcp() -> None:
    done = run_cli("--help")
    assert done.returncode == 0 and " ask " in done.stdout and " mcp " in done.stdout
    done = run_cli("ask", "--help")
    assert "[file, p. N]" in done.stdout and "--levels" in done.stdout and "--max-tokens" in done.stdout


def test_ask_without_a_model_prints_evidence_with_citations(dsn: str, ids: Any) -> None:
    done = run_cli("ask", QUESTION, dsn=dsn)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("No LLM is configured (set PYRAMID_MODEL or pass --model)")
    assert any(line.endswith(f"{CITE} insight item {item_id(ids, START)}") for line in lines)
    assert "starts on 14 April" in done.stdout and lines[-1].startswith("Usage: no LLM, 0 tokens")


def test_ask_without_a_model_says_when_nothing_is_relevant(dsn: str, ids: Any) -> None:
    done = run_cli("ask", "What is the capital of Australia?", dsn=dsn)
    assert done.returncode == 0, done.stderr
    assert "Nothing relevant was found" in " ".join(done.stdout.split())
    done = run_cli("ask", QUESTION, dsn=dsn)
    assert "Nothing relevant" not in done.stdout


def test_ask_json_without_a_model(dsn: str, ids: Any) -> None:
    done = run_cli("ask", QUESTION, "--json", "--levels", "insight", dsn=dsn)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["model"] is None and answer["levels"] == ["insight"]
    assert answer["usage"] == {"requests": 0, "input_tokens": 0, "output_tokens": 0}
    assert {e["level"] for e in answer["evidence"]} == {"insight"}
    assert answer["citations"][0]["cite"] == CITE and "14 April" in answer["citations"][0]["quote"]


def test_ask_refuses_bad_levels_and_unknown_models(dsn: str, ids: Any) -> None:
    done = run_cli("ask", QUESTION, "--levels", "insight,chapter", dsn=dsn)
    assert done.returncode == 2 and "Error: unknown level 'chapter'" in done.stderr
    done = run_cli("ask", QUESTION, "--model", "nosuchprovider:x", dsn=dsn)
    assert done.returncode == 2 and "Error: cannot use the model 'nosuchprovider:x'" in done.stderr
    done = run_cli("ask", QUESTION, "--max-requests", "1", dsn=dsn)
    assert done.returncode == 2 and "ask_request_limit" in done.stderr


def _scripted_session() -> Any:
    def expand_start(messages: list[ModelMessage], info: AgentInfo) -> Any:
        hits = tool_returns(messages, "search")[-1].content
        return call(
            "note",
            text="starts 14 April",
            item_ids=[next(h["id"] for h in hits if h["text"].startswith(START))],
        )

    def answer(messages: list[ModelMessage], info: AgentInfo) -> Any:
        return text(
            f"The pilot starts on 14 April 2031 {tool_returns(messages, 'evidence')[-1].content['items'][0]['cite']}."
        )

    return scripted(
        call("search", query="Holm Orchards pilot starts on 14 April"), expand_start, text("done"), answer
    )


def _ask_with(model: Any, dsn: str, monkeypatch: pytest.MonkeyPatch, as_json: bool) -> Any:
    """`pyramid ask` in process, with the model string resolved to ``model``; exit code 0."""
    from typer.testing import CliRunner

    from pyramid.agents import base
    from pyramid.cli import app

    monkeypatch.setattr(base, "resolve_model", lambda spec: model)
    args = ["--dsn", dsn, "ask", QUESTION, "--model", "scripted:model"] + (["--json"] if as_json else [])
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ask_with_a_model_prints_the_answer_sources_and_usage(
    dsn: str, ids: Any, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    """In process, with the model string resolved to a scripted FunctionModel."""
    model, seen = _scripted_session()
    result = _ask_with(model, dsn, monkeypatch, as_json)
    if as_json:
        answer = json.loads(result.stdout)
        assert (
            answer["model"] == "scripted:model"
            and answer["text"] == f"The pilot starts on 14 April 2031 {CITE}."
        )
        assert answer["usage"]["requests"] == 4 == len(seen) and answer["answer_usage"]["requests"] == 1
        assert answer["usage"]["input_tokens"] > answer["answer_usage"]["input_tokens"] > 0
        assert [c["cite"] for c in answer["citations"]] == [CITE] and answer["notes"][0][
            "text"
        ] == "starts 14 April"
        return
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0] == f"The pilot starts on 14 April 2031 {CITE}."
    assert "Sources" in lines[1]
    assert lines[2].startswith(f"{CITE} insight item ") and "14 April" in lines[2]
    assert lines[3].startswith("Usage: 4 requests, ") and "(answer step: 1 request, " in lines[3]
    assert "output tokens" in lines[3] and lines[3].endswith("scripted:model")


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_misbehaving_model_gives_a_partial_answer_and_exit_0(
    dsn: str, ids: Any, monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    """A research model that writes its tool call as text, then an answer that only fabricates."""
    model, _ = scripted(
        text('{"name": "search", "arguments": {"query": "pilot"}}'),
        text("Cancelled [holm-secret-memo.pdf, p. 3]."),
    )
    result = _ask_with(model, dsn, monkeypatch, as_json)
    if as_json:
        answer = json.loads(result.stdout)
        assert answer["partial"] and "holm-secret-memo" in answer["stopped"]
        assert answer["notices"][0].startswith("The model made no tool call")
        assert answer["citations"]
        return
    assert "Partial: the model kept citing sources that are not in the evidence" in " ".join(
        result.stdout.split()
    )
    assert "The model made no tool call" in result.stderr
    assert "Sources" in result.stdout


def test_a_model_that_cannot_be_reached_exits_1_with_one_line(
    dsn: str, ids: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pydantic_ai.exceptions import ModelConnectionError
    from pydantic_ai.models.function import FunctionModel

    from pyramid.agents import base
    from pyramid.cli import main

    def refused(messages: Any, info: Any) -> Any:
        raise ModelConnectionError("local", "Connection refused")

    monkeypatch.setattr(base, "resolve_model", lambda spec: FunctionModel(refused))
    with pytest.raises(SystemExit) as exited:
        main(["--dsn", dsn, "ask", QUESTION, "--model", "x:y", "--no-stream"])
    assert exited.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "the model could not be reached" in lines[0], lines
