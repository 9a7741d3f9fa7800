"""Incremental re-distillation of a changed document (the nightly sync's common case).

A full run reads every page twice, in ``n + 1`` windows. When a stored version exists and most pages
did not change, that is wasted money: the insights of an unchanged page do not depend on a page far
away. So the new pages are aligned with the stored ones by content hash (insertions and deletions
shift page numbers, they do not make pages "changed"), the stored insights of unchanged pages are
kept (renumbered onto the new pages), and only the windows that read a changed page — the page's own
window and its neighbour — run again, shown the kept insights of their pages. Everything the model is
asked goes through the output cache as before, so a crashed incremental run resumes for free.

The plan is pure bookkeeping (no model, no database): tests drive it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from .windows import BookInsight, InsightBook, plan_windows

# Past this share of windows to re-run, a full run costs about the same and reads better.
FULL_RUN_SHARE = 0.5


@dataclass(frozen=True)
class StoredInsight:
    text: str
    pages: list[int]
    key: str | None = None


@dataclass
class WindowPlan:
    """What a (re-)distillation reads: ``run`` are (position, pages) of the windows to ask the model
    about, in order, out of ``total`` windows; ``book`` starts with the kept insights; ``seen`` are
    the pages whose insights are already known (shown to the model as a second reading)."""

    run: list[tuple[int, tuple[int, ...]]]
    total: int
    book: InsightBook = field(default_factory=InsightBook)
    seen: set[int] = field(default_factory=set)
    incremental: bool = False
    kept: int = 0
    dirty_pages: list[int] = field(default_factory=list)


def full_plan(page_count: int) -> WindowPlan:
    windows = plan_windows(page_count)
    return WindowPlan(run=list(enumerate(windows, start=1)), total=len(windows))


def align_pages(old: Sequence[str], new: Sequence[str]) -> dict[int, int]:
    """Old page number → new page number for the pages whose content (hash) survived, paired in
    order (a longest common subsequence of the hashes)."""
    matcher = SequenceMatcher(None, list(old), list(new), autojunk=False)
    mapping: dict[int, int] = {}
    for tag, i1, i2, j1, _j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                mapping[i1 + offset + 1] = j1 + offset + 1
    return mapping


def incremental_plan(
    old_hashes: Sequence[str], new_hashes: Sequence[str], stored: Sequence[StoredInsight]
) -> WindowPlan:
    """The windows to re-run and the insights to keep; a full plan when too much changed."""
    count = len(new_hashes)
    if not old_hashes or not stored or count == 0:
        return full_plan(count)
    mapping = align_pages(old_hashes, new_hashes)
    new_of_old = mapping
    old_of_new = {new: old for old, new in mapping.items()}
    dirty = [page for page in range(1, count + 1) if page not in old_of_new]
    windows = plan_windows(count)
    run = []
    for position, pages in enumerate(windows, start=1):
        touched = any(page in dirty for page in pages)
        # Two pages that were not neighbours before (something between them was deleted) make a
        # window nobody has read.
        split = len(pages) == 2 and old_of_new.get(pages[0], -1) + 1 != old_of_new.get(pages[1], -2)
        if touched or split:
            run.append((position, pages))
    if len(run) > FULL_RUN_SHARE * len(windows):
        return full_plan(count)
    book = InsightBook()
    kept = 0
    for insight in stored:
        # An insight survives only if every page it rests on survived: a changed page's insights
        # are written again by the windows that read the page.
        if not insight.pages or any(page not in new_of_old for page in insight.pages):
            continue
        moved = sorted(new_of_old[page] for page in insight.pages)
        number = book.next_number
        book.next_number += 1
        book.entries[number] = BookInsight(number, insight.key or f"kept.{number}", insight.text, moved)
        kept += 1
    seen = set(old_of_new)
    return WindowPlan(
        run=run, total=len(windows), book=book, seen=seen, incremental=True, kept=kept, dirty_pages=dirty
    )


def page_batches(
    insights: Sequence[tuple[int, str, int]], *, pages_per_batch: int, max_insights: int
) -> list[list[tuple[int, str]]]:
    """Concept batches of (ordinal, text), cut at fixed page ranges (then by ``max_insights`` inside
    a range), so an edit on one page changes one batch and leaves every other batch's prompt — and
    its cached answer — as it was. ``insights`` are (ordinal, text, first page) in reading order."""
    ranges: dict[int, list[tuple[int, str]]] = {}
    for ordinal, text, first_page in insights:
        ranges.setdefault((first_page - 1) // pages_per_batch, []).append((ordinal, text))
    batches: list[list[tuple[int, str]]] = []
    for index in sorted(ranges):
        rows = ranges[index]
        batches += [rows[i : i + max_insights] for i in range(0, len(rows), max_insights)]
    return batches
