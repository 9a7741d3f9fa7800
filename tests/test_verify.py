"""Validity over time: a learned recollection goes stale when a cited document changes; `sync` runs the
cheap check (cited items unchanged: valid; changed or gone: retired, kept but never searched);
`verify --model` keeps, revises (old text on the history) or retires it as the scripted model judges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ask_helpers import call, scripted, text, tool_returns
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

SAFETY = "# Safety\n\nThe Head of Safety, Ruth Calder, reviews the incident log every Monday.\n\n{rule}\n"
RULE = "Every field test follows the two-person rule with two trained people."
NEWS = "# News\n\nRuth Calder joined Fernhollow in April as the new Head of Safety.\n\n{training}\n"
TRAINING = "Ruth Calder trains the new field staff every week."
LEVELS = ["insight"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("verify-docs")
    (folder / "safety.md").write_text(SAFETY.format(rule=RULE))
    (folder / "news.md").write_text(NEWS.format(training=TRAINING))
    return folder


@pytest.fixture(scope="module")
def corpus(kp: Any, docs: Path) -> Path:
    report = kp.sync([docs])
    assert report.ok and len(report.added) == 2
    return docs


def answer(*claims: tuple[str, str]) -> FunctionModel:
    """Research one search, then write each claim cited with the first item that holds its text."""

    def write(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        pack = tool_returns(messages, "evidence")[-1].content
        parts = []
        for sentence, containing in claims:
            item = next(i for i in pack["items"] if containing in i["text"])
            parts.append(f"{sentence} {item['cite']}.")
        return text(" ".join(parts))

    model, _ = scripted(
        call("search", query="Ruth Calder safety training incident log", k=20), text("done"), write
    )
    return model


def judge(verdict: str, revised: str = "") -> tuple[FunctionModel, list[str]]:
    """A scripted verify model: always ``verdict`` (with ``revised`` as the new text); the prompts it saw."""
    prompts: list[str] = []

    def play(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompts.append(str(messages[0].parts[-1].content))  # type: ignore[union-attr]
        return ModelResponse(
            parts=[ToolCallPart(info.output_tools[0].name, {"verdict": verdict, "text": revised})]
        )

    return FunctionModel(play), prompts


def learn(kp: Any, *claims: tuple[str, str]) -> Any:
    learned = kp.ask("What does Ruth Calder do?", model=answer(*claims), levels=LEVELS, learn=True).learned
    assert learned is not None and learned.action == "added", learned
    return learned


def edit(path: Path, text: str) -> None:
    path.write_text(text)


def test_an_edit_elsewhere_in_a_cited_document_leaves_it_valid_after_sync(kp: Any, corpus: Path) -> None:
    learned = learn(
        kp,
        ("The Head of Safety, Ruth Calder, reviews the incident log every Monday", "every Monday"),
        ("Ruth Calder joined Fernhollow in April as the new Head of Safety", "joined Fernhollow"),
    )
    # A sentence added to news.md: the document changed, the cited sentence did not.
    edit(corpus / "news.md", NEWS.format(training=TRAINING + "\n\nThe team grew to forty people in May."))
    report = kp.ingest([corpus])
    assert len(report.updated) == 1
    assert kp.recollection(learned.recollection).status == "stale"
    assert [r.id for r in kp.recollections(stale=True)] == [learned.recollection]

    report = kp.sync([corpus])  # unchanged files now; the cheap check runs at the end
    assert report.recollections == {"valid": 1}
    view = kp.recollection(learned.recollection)
    assert view.status == "valid" and view.history[-1]["by"] == "verify"
    assert all(s.item_id is not None and s.text for s in view.sources)


def test_a_changed_cited_sentence_retires_it_and_search_leaves_it_out(kp: Any, corpus: Path) -> None:
    [view] = [v for v in kp.recollections(kind="learned") if "every Monday" in v.text]
    assert view.id in [
        h.id for h in kp.evidence("Who reviews the incident log every Monday?", levels=["recollection"])
    ]
    edit(corpus / "safety.md", SAFETY.format(rule=RULE).replace("every Monday", "every Friday"))
    report = kp.sync([corpus])
    assert report.recollections == {"retired": 1}
    retired = kp.recollection(view.id)
    assert retired.status == "retired" and "changed or are gone" in retired.history[-1]["reason"]
    # Kept, with its audit trail, but listed only with all=True and never a search hit.
    assert view.id not in [v.id for v in kp.recollections()]
    assert view.id in [v.id for v in kp.recollections(all=True)]
    hits = kp.evidence("Who reviews the incident log every Monday?", levels=["recollection"])
    assert view.id not in [h.id for h in hits]
    assert any(s.ref for s in retired.sources)


def test_verify_with_a_model_revises_keeps_or_retires(kp: Any, corpus: Path) -> None:
    learned = learn(
        kp,
        ("Every field test follows the two-person rule with two trained people", "two-person rule"),
        ("Ruth Calder trains the new field staff every week", "trains the new field staff"),
    )
    edit(corpus / "news.md", NEWS.format(training=TRAINING.replace("every week", "every month")))
    kp.ingest([corpus])  # ingest does not verify: the recollection stays stale
    assert kp.recollection(learned.recollection).status == "stale"

    revised_text = (
        "Every field test follows the two-person rule with two trained people. "
        "Ruth Calder trains the new field staff every month."
    )
    model, prompts = judge("revise", revised_text)
    report = kp.verify_recollections(model=model)
    assert [(v.id, v.status) for v in report.verdicts] == [(learned.recollection, "revised")]
    # The model saw the statement and what news.md says now on that page.
    assert "every week" in prompts[0] and "every month" in prompts[0]
    view = kp.recollection(learned.recollection)
    assert view.status == "revised" and view.text == revised_text
    assert view.history[-1]["text"] == learned.text and view.history[-1]["by"] == "verify"
    assert any("every month" in (s.text or "") for s in view.sources)

    # Supported: kept as it is (every live one is checked with all=True).
    model, _ = judge("supported")
    report = kp.verify_recollections(model=model, all=True)
    assert {v.status for v in report.verdicts} == {"valid"}
    assert kp.recollection(learned.recollection).text == revised_text

    # A revision its sources do not back is not stored: the recollection is retired instead.
    model, _ = judge("revise", "Ruth Calder trains the new field staff every 7 days on Mars.")
    report = kp.verify_recollections(model=model, all=True)
    assert [v.status for v in report.verdicts] == ["retired"]
    assert kp.recollection(learned.recollection).text == revised_text
    assert kp.recollections(kind="learned") == []


def test_the_cli_lists_recollections_and_shows_one_with_its_audit_trail(
    kp: Any, corpus: Path, dsn: str
) -> None:
    import json

    from conftest import run_cli

    done = run_cli("recollections", "--learned", "--all", "--json", dsn=dsn)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert (
        listed and {r["kind"] for r in listed} == {"learned"} and {r["status"] for r in listed} == {"retired"}
    )
    assert run_cli("recollections", "--learned", "--json", dsn=dsn).stdout.strip() == "[]"

    first = listed[0]["id"]
    done = run_cli("show", f"recollection:{first}", dsn=dsn, env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert f"[recollection {first}]" in done.stdout and "retired" in done.stdout
    assert "sources" in done.stdout and "safety.md" in done.stdout and "history" in done.stdout

    done = run_cli("recollections", "verify", "--all", dsn=dsn)
    assert done.returncode == 0 and "Checked 0 learned recollection(s)" in done.stdout
    assert run_cli("show", "recollection:x", dsn=dsn).returncode == 2
