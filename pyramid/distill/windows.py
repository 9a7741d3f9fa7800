"""The numbered insight list that the sliding window edits, and the plan of windows.

Kept free of pydantic_ai so that the bookkeeping can be tested (and reused by an incremental
re-distillation) on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


def _normal(text: str) -> str:
    """Text compared for identity: case, spacing and the final full stop do not count."""
    return " ".join(text.lower().split()).rstrip(".")


def plan_windows(page_count: int) -> list[tuple[int, ...]]:
    """The windows that read every page twice, in order: [1], [1, 2], [2, 3], …, [n-1, n], [n].

    Window i shows pages i-1 and i; the first shows page 1 alone and a closing window shows the
    last page alone, so the first and the last page are read twice like the others. A one-page
    document is read twice on its own."""
    if page_count <= 0:
        return []
    windows: list[tuple[int, ...]] = [(1,)]
    windows += [(i - 1, i) for i in range(2, page_count + 1)]
    windows.append((page_count,))
    return windows


class _Added(Protocol):
    text: str
    pages: list[int]


class _Revised(Protocol):
    number: int
    text: str
    pages: list[int]


class _Edits(Protocol):
    @property
    def add(self) -> Sequence[_Added]: ...

    @property
    def revise(self) -> Sequence[_Revised]: ...

    @property
    def delete(self) -> Sequence[int]: ...


@dataclass
class BookInsight:
    number: int  # what the model sees and refers to; never reused
    key: str  # stable identity "<window>.<j>": the window that wrote it and its place there
    text: str
    pages: list[int]


@dataclass
class InsightBook:
    """The document's insights as the windows write them."""

    entries: dict[int, BookInsight] = field(default_factory=dict)
    next_number: int = 1

    def for_pages(self, pages: Sequence[int]) -> list[BookInsight]:
        """The insights so far that rest on any of ``pages`` (what a window shows), by number."""
        wanted = set(pages)
        return [entry for entry in self.entries.values() if wanted & set(entry.pages)]

    def apply(self, window: int, edits: _Edits) -> None:
        """Apply validated edits: deletions, then revisions (same number, new text and pages),
        then additions (new numbers)."""
        for number in edits.delete:
            self.entries.pop(number, None)
        for revision in edits.revise:
            entry = self.entries.get(revision.number)
            if entry is not None:
                entry.text = revision.text.strip()
                entry.pages = sorted(set(revision.pages))
        for j, added in enumerate(edits.add, start=1):
            text = added.text.strip()
            # The second reading of a page often writes an insight of the first again: one insight
            # that names both readings' pages, not two.
            same = self._same_text(text)
            if same is not None:
                same.pages = sorted(set(same.pages) | set(added.pages))
                continue
            number = self.next_number
            self.next_number += 1
            self.entries[number] = BookInsight(number, f"{window}.{j}", text, sorted(set(added.pages)))

    def _same_text(self, text: str) -> BookInsight | None:
        key = _normal(text)
        return next((e for e in self.entries.values() if _normal(e.text) == key), None)

    def alive(self) -> list[BookInsight]:
        """The final insights in reading order: by first page, then by when they were written."""
        return sorted(self.entries.values(), key=lambda e: (min(e.pages), e.number))
