"""The typed values the library returns (and the CLI prints, as tables or ``--json``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from .config import Level

DocumentStatus = Literal["pending", "converted", "distilled", "ready", "failed"]
# "distilled": stored before with pages only (--no-distill), unchanged since, distilled now.
Outcome = Literal["added", "updated", "distilled", "unchanged", "failed", "removed"]


class Usage(BaseModel):
    """LLM usage, summed over requests."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def sum(cls, usages: Iterable[Usage]) -> Usage:
        total = cls()
        for usage in usages:
            total += usage
        return total

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class DocumentInfo(BaseModel):
    id: int
    source: str
    path: str
    title: str
    format: str
    pages: int
    status: DocumentStatus
    error: str | None = None
    distiller: str | None = None
    sha256: str | None = None
    ingested_at: datetime
    updated_at: datetime
    items: dict[str, int] = Field(default_factory=dict, description="item count per level")
    usage: Usage = Field(default_factory=Usage)


class ItemView(BaseModel):
    id: int
    level: Level
    ordinal: int
    title: str | None = None
    text: str
    pages: list[int]
    distiller: str | None = None
    stale: bool = False
    sources: list[int] = Field(default_factory=list, description="ids of the items it was built from")


class DocumentView(BaseModel):
    """One document with its stored levels, top-down."""

    document: DocumentInfo
    abstract: list[ItemView] = Field(default_factory=list)
    concepts: list[ItemView] = Field(default_factory=list)
    insights: list[ItemView] = Field(default_factory=list)
    pages: list[ItemView] = Field(default_factory=list)
    recollections: list[ItemView] = Field(default_factory=list)


class FileResult(BaseModel):
    """What happened to one document (or to one file that never became a document)."""

    source: str
    outcome: Outcome
    title: str | None = None
    pages: int = 0
    reason: str | None = None
    usage: Usage = Field(default_factory=Usage)


def _result_json(result: FileResult) -> dict[str, object]:
    """One result for ``--json``: a title and a page count only where this run knows them (an
    unchanged file is not read again, so it showed ``title: null, pages: 0``)."""
    data = result.model_dump()
    if data["title"] is None:
        del data["title"]
    if result.outcome not in ("added", "updated", "distilled"):
        del data["pages"]
    return data


class IngestReport(BaseModel):
    results: list[FileResult] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage, description="LLM tokens spent (estimated in a dry run)")
    elapsed: float = 0.0
    dry_run: bool = False
    distiller: str | None = Field(None, description="'extractive' or the model that distilled")
    price: float | None = Field(None, description="USD for `usage`, where genai-prices knows the model")
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="wall-clock seconds during which at least one file or document was in each stage "
        "(hash, convert, embed, distill, write); stages overlap one another, so they can sum to more "
        "than elapsed",
    )

    def _with(self, outcome: Outcome) -> list[FileResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def added(self) -> list[FileResult]:
        return self._with("added")

    @property
    def updated(self) -> list[FileResult]:
        return self._with("updated")

    @property
    def unchanged(self) -> list[FileResult]:
        return self._with("unchanged")

    @property
    def failed(self) -> list[FileResult]:
        return self._with("failed")

    @property
    def removed(self) -> list[FileResult]:
        return self._with("removed")

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        keys: tuple[Outcome, ...] = ("added", "updated", "distilled", "unchanged", "removed", "failed")
        return {key: len(self._with(key)) for key in keys}

    def summary(self) -> dict[str, object]:
        """The JSON the CLI prints: counts, then every result."""
        return {
            "ok": self.ok,
            "counts": self.counts(),
            "pages": sum(r.pages for r in self.results if r.outcome in ("added", "updated")),
            "elapsed": round(self.elapsed, 3),
            "dry_run": self.dry_run,
            "usage": self.usage.model_dump(),
            "distiller": self.distiller,
            "price": self.price,
            "timings": {key: round(value, 3) for key, value in self.timings.items()},
            "results": [_result_json(r) for r in self.results],
        }


class StepUsage(BaseModel):
    """Tokens one distillation step spent (summed over runs), and calls answered from the cache."""

    step: str
    model: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cached: int = 0


class DocumentUsage(BaseModel):
    source: str
    document_id: int | None = Field(None, description="None when the document is gone")
    title: str = ""
    steps: list[StepUsage] = Field(default_factory=list)
    failed: bool = Field(False, description="some attempt failed (its tokens are counted too)")

    @property
    def total(self) -> Usage:
        return Usage.sum(step.usage for step in self.steps)


class Stats(BaseModel):
    """What ``pyramid stats`` prints: item counts per level, documents per status, token usage."""

    items: dict[str, int] = Field(default_factory=dict, description="items per level")
    stale: int = Field(0, description="stale recollections")
    distillers: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="level → distiller → items"
    )
    documents: dict[str, int] = Field(default_factory=dict, description="documents per status")
    steps: list[StepUsage] = Field(default_factory=list, description="usage per step and model")
    per_document: list[DocumentUsage] = Field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return Usage.sum(step.usage for step in self.steps)
