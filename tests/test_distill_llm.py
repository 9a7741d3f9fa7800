"""The LLM distiller with scripted models (no model requests): the sliding window reads every page
twice and in order, edits are applied, invalid answers are sent back, failures stay with their
document, usage is counted, and cached outputs are not paid twice."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from scripted import INPUT_TOKENS, OUTPUT_TOKENS, Scripted, Window, default_window, http_error

from pyramid import Pyramid
from pyramid.errors import NotFoundError


def sections(*bodies: str, title: str = "Doc") -> str:
    """A markdown document that the converter splits into one page per section (page_chars=200)."""
    parts = [f"# {title}"]
    for n, body in enumerate(bodies, start=1):
        parts.append(f"## Part {n}\n\n{body}")
    return "\n\n".join(parts) + "\n"


FILLER = " The rest of this section repeats background that the tests do not need at all."
THREE = sections(
    "Alpha Corp makes red bicycles in Lyon. The factory opened in 1990." + FILLER,
    "Beta Ltd sells the bicycles in Spain. Sales grew by ten percent." + FILLER,
    "Gamma GmbH repairs old bicycles. It has five workshops in Berlin." + FILLER,
)


@pytest.fixture(scope="module")
def kp(dsn: str):  # type: ignore[no-untyped-def]
    with Pyramid.open(dsn=dsn, page_chars=200, retry_backoff=0) as pyramid:
        yield pyramid


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_every_page_reaches_the_window_twice_in_order(kp: Pyramid, tmp_path: Path) -> None:
    path = write(tmp_path, "three.md", THREE)
    brain = Scripted()
    report = kp.ingest([path], model=brain.model())
    assert report.ok, report.failed
    seen = brain.pages_read()
    pages = [page for page, _ in seen]
    assert pages == [1, 1, 2, 2, 3, 3]  # windows [1], [1,2], [2,3], [3]
    assert [first for _, first in seen] == [True, False, True, False, True, False]
    assert all(pages.count(p) == 2 for p in (1, 2, 3))
    view = kp.document(str(path))
    assert view.document.distiller == "function:scripted"
    assert [i.pages for i in view.insights] == [[1], [2], [3]]
    assert all(i.distiller == "function:scripted" for i in view.insights + view.concepts + view.abstract)
    # Provenance: insight → its page; concept → insights; abstract → concepts.
    page_ids = {p.ordinal: p.id for p in view.pages}
    assert [i.sources for i in view.insights] == [[page_ids[1]], [page_ids[2]], [page_ids[3]]]
    assert sorted(view.concepts[0].sources) == sorted(i.id for i in view.insights)
    assert view.abstract[0].sources == [view.concepts[0].id]


def test_revisions_and_deletions_are_applied(kp: Pyramid, tmp_path: Path) -> None:
    def window(w: Window) -> dict[str, Any]:
        pages = [p for p, _, _ in w.pages]
        if pages == [1] and not w.shown:
            return {
                "add": [
                    {"text": "Alpha Corp makes bicycles.", "pages": [1]},
                    {"text": "The factory opened in 1850.", "pages": [1]},
                ]
            }
        if pages == [1, 2]:
            assert w.shown == [1, 2]
            return {
                "revise": [{"number": 1, "text": "Alpha Corp makes red bicycles in Lyon.", "pages": [1]}],
                "delete": [2],
                "add": [{"text": "Beta Ltd sells the bicycles.", "pages": [1, 2]}],
            }
        if pages == [2, 3]:
            assert w.shown == [3]
            return {"add": [{"text": "Gamma GmbH repairs bicycles.", "pages": [3]}]}
        return {}

    path = write(tmp_path, "edits.md", THREE)
    report = kp.ingest([path], model=Scripted(on_window=window).model())
    assert report.ok, report.failed
    texts = [(i.text, i.pages) for i in kp.document(str(path)).insights]
    assert texts == [
        ("Alpha Corp makes red bicycles in Lyon.", [1]),
        ("Beta Ltd sells the bicycles.", [1, 2]),
        ("Gamma GmbH repairs bicycles.", [3]),
    ]


def test_invalid_references_are_sent_back_and_never_stored(kp: Pyramid, tmp_path: Path) -> None:
    def window(w: Window) -> dict[str, Any]:
        pages = [p for p, _, _ in w.pages]
        if pages == [1, 2] and w.retry is None:
            # An insight number it was never shown, and a page outside the window.
            return {"delete": [42], "add": [{"text": "Gamma GmbH repairs bicycles.", "pages": [3]}]}
        if pages == [1, 2]:
            return {"add": [{"text": "Beta Ltd sells the bicycles.", "pages": [2]}]}
        return {"add": [{"text": f"Page {pages[-1]} fact.", "pages": [pages[-1]]}]} if len(pages) == 1 else {}

    brain = Scripted(on_window=window)
    path = write(tmp_path, "invalid.md", THREE)
    report = kp.ingest([path], model=brain.model())
    assert report.ok, report.failed
    retries = [c for c in brain.windows() if c.retry]
    assert len(retries) == 1
    assert "insight 42 is not one of the insights shown" in retries[0].retry
    assert "outside this window" in retries[0].retry
    insights = kp.document(str(path)).insights
    assert "Gamma GmbH repairs bicycles." not in [i.text for i in insights]
    assert [i.text for i in insights] == ["Page 1 fact.", "Beta Ltd sells the bicycles.", "Page 3 fact."]


def test_a_failing_model_costs_its_document_the_llm_levels_not_the_document(
    kp: Pyramid, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    good = [
        write(folder, f"good{n}.md", sections(f"Company {n} builds boats. It employs {n} people." + FILLER))
        for n in range(4)
    ]
    bad = write(
        folder, "bad.md", sections("Poison Inc sells nothing. It closed in 2001." + FILLER, title="Poison")
    )
    first = kp.ingest([folder], model=Scripted().model(), concurrency=3)
    assert first.ok and len(first.added) == 5
    # The poisoned document changes and its model now answers 503 every time.
    bad.write_text(sections("Poison Inc sells glue now. It reopened in 2020." + FILLER, title="Poison"))
    for path in good:
        path.write_text(path.read_text() + "\nIt also builds canoes.\n")

    def fail(agent: str, prompt: str) -> BaseException | None:
        return http_error(503) if "Poison" in prompt else None

    brain = Scripted(fail=fail)
    report = kp.ingest([folder], model=brain.model(), concurrency=3)
    assert not report.ok and report.failed == []  # exit code 1, but nothing is lost
    assert [r.source for r in report.partial] == [str(bad.resolve())]
    reason = report.partial[0].reason or ""
    assert "503" in reason and "extractive" in reason
    assert len(report.updated) == 5
    retried = [c for c in brain.calls if "Poison" in c.prompt]
    assert len(retried) == 2 * (kp.settings.retries + 1)  # both windows, each 1 + retries times
    after = kp.document(str(bad))
    assert after.document.status == "partial" and "503" in (after.document.error or "")
    assert "Poison Inc sells glue now." in after.pages[0].text  # the new version, searchable
    assert after.insights and all(i.distiller == "extractive" for i in after.insights)
    # A later run with a model that works distills it again and it is complete.
    healed = kp.ingest([folder], model=Scripted().model())
    assert healed.ok, healed.partial
    assert [r.outcome for r in healed.results if r.source == str(bad.resolve())] == ["updated"]
    done = kp.document(str(bad))
    assert done.document.status == "ready" and done.document.error is None
    assert all(i.distiller == "function:scripted" for i in done.insights)


def test_a_failed_window_is_recorded_and_only_it_runs_again(kp: Pyramid, tmp_path: Path) -> None:
    path = write(tmp_path / "window", "window.md", THREE)

    def fail(agent: str, prompt: str) -> BaseException | None:
        # The window that reads page 3 for the first time fails; the others work.
        return http_error(503) if agent == "insights" and "Window 3 of 4." in prompt else None

    report = kp.ingest([path], model=Scripted(fail=fail).model())
    assert [r.source for r in report.partial] == [str(path.resolve())]
    assert "insight window 3 of 4" in (report.partial[0].reason or "")
    view = kp.document(str(path))
    assert view.document.status == "partial"
    # Page 3 is read once only, by the last window, which tells the model it is a first reading.
    assert [i.pages for i in view.insights] == [[1], [2], [3]]
    assert view.concepts and view.abstract  # the steps after the windows went on
    again = Scripted()
    healed = kp.ingest([path], model=again.model())
    assert healed.ok, healed.partial
    windows = again.windows()
    # The windows that worked come from the cache; the failed one, and the one after it (whose
    # prompt shows the insights the failed window now wrote), run.
    assert len(windows) == 2 and "Window 3 of 4." in windows[0].prompt
    assert kp.document(str(path)).document.status == "ready"


def test_empty_output_is_invalid_and_a_document_without_insights_is_not_ready(
    kp: Pyramid, tmp_path: Path
) -> None:
    path = write(tmp_path / "empty", "empty.md", THREE)
    # `{}` is what a weak model sends as "no changes" when every field has a default.
    brain = Scripted(on_window=lambda w: {}, complete=False)
    report = kp.ingest([path], model=brain.model())
    retries = [c.retry for c in brain.windows() if c.retry]
    assert retries and "Field required" in retries[0]
    assert [r.source for r in report.partial] == [str(path.resolve())]
    assert kp.document(str(path)).document.status == "partial"


def test_identical_insights_of_the_two_readings_are_one(kp: Pyramid, tmp_path: Path) -> None:
    path = write(tmp_path / "twice", "twice.md", THREE)

    def window(w: Window) -> dict[str, Any]:
        # Every reading of a page writes its first sentence again, as small models do.
        return {"add": [{"text": text.split(".")[0].strip() + ".", "pages": [p]} for p, _, text in w.pages]}

    report = kp.ingest([path], model=Scripted(on_window=window).model())
    assert report.ok, report.partial
    texts = [i.text for i in kp.document(str(path)).insights]
    assert len(texts) == len(set(texts)) == 3


def test_an_insight_that_shares_no_word_with_its_pages_is_sent_back(kp: Pyramid, tmp_path: Path) -> None:
    path = write(tmp_path / "copied", "copied.md", THREE)

    def window(w: Window) -> dict[str, Any]:
        if w.retry is None and w.pages[0][0] == 1:
            return {"add": [{"text": "Marie Curie won the prize.", "pages": [1]}]}  # a copied example
        return default_window(w)

    brain = Scripted(on_window=window)
    report = kp.ingest([path], model=brain.model())
    assert report.ok, report.partial
    assert any("shares no word" in (c.retry or "") for c in brain.windows())
    assert "Marie Curie won the prize." not in [i.text for i in kp.document(str(path)).insights]


def test_usage_is_counted_per_document_and_step(kp: Pyramid, tmp_path: Path) -> None:
    brain = Scripted()
    path = write(tmp_path / "usage", "usage.md", THREE)
    report = kp.ingest([path], model=brain.model())
    calls = [c for c in brain.calls if c.agent != "recollections"]
    assert len(calls) == 4 + 1 + 1  # 4 windows, concepts, abstract
    result = report.results[0]
    assert result.usage.requests == len(calls)
    assert result.usage.input_tokens == INPUT_TOKENS * len(calls)
    assert result.usage.output_tokens == OUTPUT_TOKENS * len(calls)
    assert kp.document(str(path)).document.usage == result.usage
    stats = kp.stats()
    doc = next(d for d in stats.per_document if d.source == str(path.resolve()))
    assert {s.step: s.usage.requests for s in doc.steps} == {"insights": 4, "concepts": 1, "abstract": 1}


def test_cached_outputs_are_not_paid_twice_and_unchanged_insights_keep_their_ids(
    kp: Pyramid, tmp_path: Path
) -> None:
    path = write(tmp_path / "cache", "cache.md", THREE)
    kp.ingest([path], model=Scripted().model())
    again = Scripted()
    report = kp.ingest([path], model=again.model(), force=True)
    assert report.ok
    assert [c for c in again.calls if c.agent != "recollections"] == []  # all six answered by the cache
    assert report.results[0].usage.requests == 0
    before = kp.document(str(path)).insights
    # Page 3 changes: only the windows that read it ([2, 3] and [3]) run again, then concepts and
    # abstract (their insights changed); the insights of pages 1 and 2 keep their ids.
    path.write_text(THREE.replace("Gamma GmbH repairs old bicycles.", "Gamma GmbH paints new bicycles."))
    edit = Scripted()
    report = kp.ingest([path], model=edit.model())
    assert report.ok, report.failed
    assert [c.agent for c in edit.calls if c.agent != "recollections"] == [
        "insights",
        "insights",
        "concepts",
        "abstract",
    ]
    assert edit.pages_read() == [(2, False), (3, True), (3, False)]
    after = kp.document(str(path)).insights
    assert [i.id for i in after[:2]] == [i.id for i in before[:2]]
    assert after[2].id != before[2].id and after[2].text == "Gamma GmbH paints new bicycles."


def test_long_documents_get_concepts_in_batches_then_merged(dsn: str, tmp_path: Path) -> None:
    bodies = [f"Firm {n} makes {n} kinds of tea. Firm {n} is in town {n}." + FILLER for n in range(1, 8)]
    path = write(tmp_path, "long.md", sections(*bodies))
    brain = Scripted()
    with Pyramid.open(dsn=dsn, page_chars=200, concept_batch=5) as kp:
        report = kp.ingest([path], model=brain.model())
        assert report.ok, report.failed
        view = kp.document(str(path))
    agents = [c.agent for c in brain.calls]
    assert agents.count("concepts") == 2 and agents.count("merge") == 1  # 7 insights in batches of 5
    assert [c.title for c in view.concepts] == ["Merged"]
    assert len(view.concepts[0].sources) == 7


def test_dry_run_estimates_tokens_and_price_without_any_call(kp: Pyramid, tmp_path: Path) -> None:
    path = write(tmp_path / "dry", "dry.md", THREE)
    report = kp.ingest([path], model="openai:gpt-4.1-mini", dry_run=True)
    assert report.dry_run and report.distiller == "openai:gpt-4.1-mini"
    assert report.usage.requests >= 6 and report.usage.input_tokens > 500
    assert report.price is not None and report.price > 0
    with pytest.raises(NotFoundError):
        kp.document(str(path))  # nothing was written
    unknown = kp.ingest([path], model="ollama:my-local-model", dry_run=True)
    assert unknown.price is None and unknown.usage.requests == report.usage.requests


def test_recollections_connect_documents_and_stale_ones_are_refreshed(fresh_dsn: str, tmp_path: Path) -> None:
    class Recollecting(Scripted):
        def answer(self, agent: str, prompt: str, retry: str | None) -> dict[str, Any]:
            if agent != "recollections":
                return super().answer(agent, prompt, retry)
            numbers = [int(n) for n in re.findall(r"(?:^|>)(\d+)\. Everything", prompt, re.M)]
            shown = re.findall(r"(?:^|>)(\d+)\. Sea and river", prompt, re.M)
            if shown:  # a stale recollection is shown: revise it
                return {
                    "revise": [
                        {
                            "number": int(shown[0]),
                            "text": "Sea and river animals, revised.",
                            "concepts": numbers[:2],
                        }
                    ],
                    "add": [],
                }
            if retry is None:  # first try: rests on one document only, which is refused
                return {"add": [{"text": "Sea and river animals.", "concepts": numbers[:1]}], "revise": []}
            return {"add": [{"text": "Sea and river animals.", "concepts": numbers[:2]}], "revise": []}

    folder = tmp_path / "animals"
    otter = write(
        folder, "otter.md", sections("Sea otters use stones to open shells." + FILLER, title="Otter")
    )
    write(folder, "beaver.md", sections("Beavers build dams from branches." + FILLER, title="Beaver"))
    with Pyramid.open(dsn=fresh_dsn, page_chars=200, retry_backoff=0) as kp:
        brain = Recollecting()
        report = kp.ingest([folder], model=brain.model())
        assert report.ok, report.failed
        calls = [c for c in brain.calls if c.agent == "recollections"]
        assert len(calls) == 2 and "at least two documents" in (calls[1].retry or "")
        recollection = kp.document(str(otter)).recollections
        assert [(r.text, r.distiller, r.stale) for r in recollection] == [
            ("Sea and river animals.", "function:scripted", False)
        ]
        assert kp.stats().steps and any(
            s.step == "recollections" and s.usage.requests == 2 for s in kp.stats().steps
        )
        # The otter changes: its concept is replaced, the recollection goes stale and is revised.
        otter.write_text(sections("Sea otters sleep holding hands." + FILLER, title="Otter"))
        again = Recollecting()
        assert kp.ingest([folder], model=again.model()).ok
        texts = [(r.text, r.stale) for r in kp.document(str(otter)).recollections]
        assert texts == [("Sea and river animals, revised.", False)]
