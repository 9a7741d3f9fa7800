"""Incremental re-distillation: a changed document re-runs only the windows that read a changed
page, keeps the untouched insights (same ids), and recomputes only the concept batches whose
insights changed — counted with a scripted model."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripted import Scripted

from pyramid import Pyramid
from pyramid.distill.incremental import StoredInsight, align_pages, incremental_plan, page_batches

PAGES = 100


def page_text(number: int, version: int = 0) -> str:
    extra = f" Revision {version} moved the depot to dock {number + version}." if version else ""
    return (
        f"## Section {number}\n\nSection {number} says the harbor crane {number} lifts {number * 3} tons."
        f" Its operator checks the cable every morning before the first ship comes in.{extra}"
    )


def document(texts: list[str]) -> str:
    return "# Harbor log\n\n" + "\n\n".join(texts) + "\n"


@pytest.fixture(scope="module")
def kp(dsn: str):  # type: ignore[no-untyped-def]
    # One section per page; small pages keep the test fast.
    with Pyramid.open(dsn=dsn, page_chars=200, retry_backoff=0, concept_batch=40) as pyramid:
        yield pyramid


def test_plan_reruns_the_windows_of_a_changed_page() -> None:
    old = [f"h{i}" for i in range(1, 11)]
    new = list(old)
    new[4] = "changed"  # page 5
    stored = [StoredInsight(f"fact {p}", [p]) for p in range(1, 11)]
    plan = incremental_plan(old, new, stored)
    assert plan.incremental
    assert [pages for _, pages in plan.run] == [(4, 5), (5, 6)]
    assert plan.kept == 9 and plan.dirty_pages == [5]
    assert sorted(p for e in plan.book.entries.values() for p in e.pages) == [1, 2, 3, 4, 6, 7, 8, 9, 10]


def test_plan_follows_inserted_and_deleted_pages() -> None:
    old = [f"h{i}" for i in range(1, 11)]
    inserted = old[:3] + ["new"] + old[3:]
    plan = incremental_plan(old, inserted, [StoredInsight(f"fact {p}", [p]) for p in range(1, 11)])
    assert [pages for _, pages in plan.run] == [(3, 4), (4, 5)]
    # The insight of old page 7 now rests on page 8.
    assert any(e.text == "fact 7" and e.pages == [8] for e in plan.book.entries.values())
    deleted = old[:3] + old[4:]  # old page 4 gone: pages 3 and 4 are new neighbours
    plan = incremental_plan(old, deleted, [StoredInsight(f"fact {p}", [p]) for p in range(1, 11)])
    assert [pages for _, pages in plan.run] == [(3, 4)]
    assert not any(e.text == "fact 4" for e in plan.book.entries.values())
    assert align_pages(["a", "b", "a"], ["a", "a"]) == {1: 1, 3: 2}


def test_plan_falls_back_to_a_full_run_when_most_pages_changed() -> None:
    old = [f"h{i}" for i in range(1, 5)]
    plan = incremental_plan(old, ["x", "y", "z", "h4"], [StoredInsight("fact", [1])])
    assert not plan.incremental and len(plan.run) == 5


def test_concept_batches_follow_page_ranges() -> None:
    insights = [(n, f"fact {n}", (n + 1) // 2) for n in range(1, 41)]  # two insights per page, 20 pages
    batches = page_batches(insights, pages_per_batch=10, max_insights=100)
    assert [len(b) for b in batches] == [20, 20]
    grown = [(n, t, p) for n, t, p in insights] + [(41, "extra", 3)]
    grown.sort(key=lambda row: (row[2], row[0]))
    assert page_batches(grown, pages_per_batch=10, max_insights=100)[1] == batches[1]  # untouched
    assert [len(b) for b in page_batches(insights, pages_per_batch=10, max_insights=8)] == [8, 8, 4, 8, 8, 4]


def test_one_page_edit_costs_at_most_five_percent_of_the_calls(kp: Pyramid, tmp_path: Path) -> None:
    texts = [page_text(n) for n in range(1, PAGES + 1)]
    path = tmp_path / "log.md"
    path.write_text(document(texts))
    first = Scripted()
    report = kp.ingest([path], model=first.model())
    assert report.ok, report.failed
    before = kp.document(str(path))
    assert before.document.pages == PAGES
    full_calls = len(first.calls)
    assert len(first.windows()) == PAGES + 1

    texts[49] = page_text(50, version=1)
    path.write_text(document(texts))
    second = Scripted()
    report = kp.sync([path], model=second.model())
    assert report.counts()["updated"] == 1, report.results
    calls = len(second.calls)
    assert calls <= 0.05 * full_calls, (calls, full_calls, [c.agent for c in second.calls])
    assert [w for w in second.pages_read()] == [(49, False), (50, True), (50, False), (51, False)]

    after = kp.document(str(path))
    old_ids = {(i.text, tuple(i.pages)): i.id for i in before.insights}
    untouched = [i for i in after.insights if 50 not in i.pages]
    assert len(untouched) == PAGES - 1
    assert all(old_ids.get((i.text, tuple(i.pages))) == i.id for i in untouched)  # same ids: kept
    assert any("Revision 1" in i.text or "crane 50" in i.text for i in after.insights if 50 in i.pages)
    assert {p.id for p in after.pages} - {p.id for p in before.pages} == {after.pages[49].id}


def test_an_inserted_page_keeps_later_pages_and_insights(kp: Pyramid, tmp_path: Path) -> None:
    texts = [page_text(n) for n in range(1, 21)]
    path = tmp_path / "short.md"
    path.write_text(document(texts))
    kp.ingest([path], model=Scripted().model())
    before = kp.document(str(path))
    texts.insert(5, "## Inserted\n\nAn inserted section says the ferry was repainted blue in May.")
    path.write_text(document(texts))
    brain = Scripted()
    kp.sync([path], model=brain.model())
    after = kp.document(str(path))
    assert after.document.pages == 21
    assert len(brain.windows()) == 2
    # Page 15 became page 16: same item, renumbered; its insight too.
    old15 = before.pages[14]
    assert after.pages[15].id == old15.id and after.pages[15].ordinal == 16
    old_insight = next(i for i in before.insights if i.pages == [15])
    moved = next(i for i in after.insights if i.id == old_insight.id)
    assert moved.pages == [16] and moved.text == old_insight.text


def test_a_second_model_distills_from_scratch(kp: Pyramid, tmp_path: Path) -> None:
    texts = [page_text(n) for n in range(1, 6)]
    path = tmp_path / "other.md"
    path.write_text(document(texts))
    kp.ingest([path], model=Scripted().model("first"))
    texts[2] = page_text(3, version=2)
    path.write_text(document(texts))
    brain = Scripted()
    kp.sync([path], model=brain.model("second"))
    assert len(brain.windows()) == 6  # insights of another model are not edited by this one
