"""pyramid overview on the really ingested example corpus, with no model: every document by format and
size, at least three themes that span two documents or more, example questions, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ask_helpers import ingest_examples


@pytest.fixture(scope="module")
def ids(kp: Any) -> dict[str, int]:
    return ingest_examples(kp)


def test_the_overview_lists_every_document_and_themes_that_span_documents(
    kp: Any, ids: dict[str, int]
) -> None:
    view = kp.overview()
    stored = kp.documents()
    assert sorted(d.source for d in view.documents) == sorted(d.source for d in stored)
    assert sum(f.documents for f in view.formats) == len(stored) == 11
    # The feed's four items come from one file, whose bytes count once.
    feed = next(f for f in view.formats if f.documents > f.files)
    assert feed.files == 1 and feed.documents == 4
    assert view.bytes == sum(p.stat().st_size for p in {Path(d.path) for d in stored})
    assert view.pages == sum(d.pages for d in stored)

    spanning = [t for t in view.themes if t.documents >= 2]
    assert len(spanning) >= 3
    assert all(len(t.titles) == t.documents and len(set(t.titles)) == t.documents for t in view.themes)
    assert 5 <= len(view.questions) <= 10 and len(set(view.questions)) == len(view.questions)
    # The user recollection of the test corpus is what the recollections say.
    assert view.recollections.get("user") == 1 and any("Ruth Calder" in r.text for r in view.says)


def test_the_cli_prints_the_overview_as_json(kp: Any, ids: dict[str, int], dsn: str) -> None:
    from conftest import run_cli

    done = run_cli("overview", "--json", dsn=dsn)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len(data["documents"]) == 11 and data["themes"] and data["questions"]
    done = run_cli("overview", dsn=dsn, env={"COLUMNS": "120"})
    assert done.returncode == 0 and "Themes" in done.stdout and "Questions" in done.stdout


def test_the_research_agent_can_ask_for_the_overview_and_cite_a_theme(kp: Any, ids: dict[str, int]) -> None:
    from ask_helpers import call, scripted, text, tool_returns

    def note_theme(messages: Any, info: Any) -> Any:
        theme = tool_returns(messages, "overview")[-1].content["themes"][0]
        return call("note", text=f"A main theme is {theme['name']}.", item_ids=[theme["id"]])

    def answer(messages: Any, info: Any) -> Any:
        noted = tool_returns(messages, "evidence")[-1].content["items"][0]  # noted items come first
        return text(f"The collection is mostly about {noted['title']} {noted['cite']}.")

    model, seen = scripted(call("overview"), note_theme, text("done"), answer)
    result = kp.ask("What is this collection about?", model=model)
    shown = tool_returns(seen[1], "overview")[0].content
    assert shown["documents"] == 11 and shown["questions"] and len(shown["themes"]) >= 3
    assert all(t["documents"] >= 1 and t["cite"].startswith("[") for t in shown["themes"])
    # The theme is an item of the pyramid: noted, handed to the answer, cited.
    [citation] = result.citations
    assert citation.item_id == shown["themes"][0]["id"] and citation.level == "concept"


def _question_writer(*answers: list[str]) -> Any:
    """A scripted model that answers the questions agent with ``answers`` in turn (then the last)."""
    from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    prompts: list[str] = []

    def write(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompts.append(" ".join(str(getattr(p, "content", "")) for m in messages for p in m.parts))
        questions = answers[min(len(prompts), len(answers)) - 1]
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"questions": questions})])

    return FunctionModel(write), prompts


def test_with_a_model_the_questions_are_written_by_it_from_the_themes(kp: Any, ids: dict[str, int]) -> None:
    built = kp.overview()
    written = [f"What does the collection say about topic {n}?" for n in range(6)]
    model, prompts = _question_writer(["Only one?"], written)
    view = kp.overview(model=model)
    assert view.questions == written and view.questions_by and view.questions_by.startswith("function:")
    assert [t.name for t in view.themes] == [t.name for t in built.themes]
    # The themes reach the model framed as data; too few questions went back to be fixed.
    assert all(theme.name in prompts[0] for theme in view.themes) and "<concepts>" in prompts[0]
    assert len(prompts) == 2 and "write 5 to 10 different questions, not 1" in prompts[1]


def test_a_model_whose_questions_stay_unusable_leaves_the_built_ones(
    tight_kp: Any, ids: dict[str, int]
) -> None:
    built = tight_kp.overview()
    model, prompts = _question_writer(["not a question"] * 6)
    view = tight_kp.overview(model=model)
    assert view.questions == built.questions and view.questions_by is None
    assert view.notices and "the example questions failed" in view.notices[0]
    assert "built from the themes" in view.notices[0]


@pytest.fixture
def tight_kp(dsn: str) -> Any:
    from pyramid import Pyramid

    with Pyramid.open(dsn=dsn, retries=0, output_retries=1) as opened:
        yield opened
