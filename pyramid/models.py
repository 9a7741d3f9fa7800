"""The typed values the library returns (and the CLI prints, as tables or ``--json``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Level = Literal["page", "insight", "concept", "abstract", "recollection"]
LEVELS: tuple[Level, ...] = ("page", "insight", "concept", "abstract", "recollection")
# What `ask` searches unless told otherwise: the distilled levels; pages only when asked, because the
# pyramid exists so that an answer does not have to read whole pages.
ASK_LEVELS: tuple[Level, ...] = ("insight", "concept", "abstract", "recollection")

# partial: stored with what worked after some model calls failed (see the error); re-distilled by
# the next run, which pays only for the calls that failed.
DocumentStatus = Literal["pending", "converted", "distilled", "ready", "partial", "failed"]
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
    partial: bool = Field(False, description="stored with what worked; ``reason`` says what failed")


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
    encoder: dict[str, Any] = Field(
        default_factory=dict,
        description="the encoder of this run (backend, precision) and its pages/s on the pages it embedded",
    )
    recollections: dict[str, int] = Field(
        default_factory=dict,
        description="sync: stale learned recollections found valid or retired by the cheap check",
    )
    workers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="with --workers: per worker (host:pid:tag), the jobs it finished and its jobs/s",
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
    def partial(self) -> list[FileResult]:
        return [r for r in self.results if r.partial]

    @property
    def ok(self) -> bool:
        """No document failed or was stored partial (the exit code: 0 when ok, else 1)."""
        return not self.failed and not self.partial

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
            "encoder": {k: round(v, 3) if isinstance(v, float) else v for k, v in self.encoder.items()},
            "recollections": self.recollections,
            **({"workers": self.workers} if self.workers else {}),
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
    encoder: dict[str, Any] = Field(
        default_factory=dict,
        description="model; backend/precision the database was built with and this process encodes "
        "with; recorded probes of other encoders",
    )

    @property
    def usage(self) -> Usage:
        return Usage.sum(step.usage for step in self.steps)


# --- what agents read and cite: evidence, citations, answers ---------------------------------------


class Hit(BaseModel):
    """One search result: an item of some level, where it comes from, and how it scored.

    A hit is what a ranking returns (the scores of each leg, for ``pyramid search`` and its JSON);
    ``Evidence`` is the same item as an agent cites it, named by a session's label table, which a
    hit cannot know. ``Evidence.from_hit`` turns one into the other without reading the item again.
    """

    rank: int = Field(description="1-based position in the result")
    id: int = Field(description="item id")
    level: Level
    text: str
    title: str | None = Field(None, description="the item's own title (a concept's name)")
    document_id: int | None = Field(None, description="None for cross-document recollections")
    source: str | None = Field(None, description="the document's source path")
    path: str | None = Field(None, description="the file the document came from (a feed item: the feed)")
    document_title: str | None = None
    pages: list[int] = Field(default_factory=list)
    stale: bool = False
    fused: float = Field(description="fused score (RRF or weighted) the result is ordered by, before rerank")
    bm25: float | None = Field(None, description="Okapi BM25 within the item's level")
    bm25_rank: int | None = None
    vector: float | None = Field(None, description="cosine similarity to the query")
    vector_rank: int | None = None
    rerank: float | None = Field(None, description="cross-encoder score, when reranked")


class Evidence(BaseModel):
    """One item of the pyramid, ready to cite."""

    id: int = Field(description="item id (give it to expand, or to note)")
    level: Level
    text: str
    title: str | None = Field(None, description="a concept's name")
    document: str | None = Field(
        None, description="the file as cited (None for a cross-document recollection)"
    )
    document_title: str | None = None
    source: str | None = Field(None, description="the document's full source path")
    document_id: int | None = None
    pages: list[int] = Field(default_factory=list)
    cite: str = Field(description="the citation that names this item, e.g. [handbook.md, p. 2]")
    stale: bool = Field(False, description="a recollection whose sources changed since it was made")
    score: float | None = Field(None, description="search or rerank score, where it came from a search")
    truncated: bool = Field(False, description="the text was shortened for this listing")

    def clipped(self, chars: int) -> Evidence:
        """The same item with its text cut to ``chars`` characters (at a word boundary)."""
        if len(self.text) <= chars:
            return self
        cut = self.text[:chars].rsplit(" ", 1)[0] if " " in self.text[:chars] else self.text[:chars]
        return self.model_copy(update={"text": cut.rstrip() + " …", "truncated": True})

    def brief(self, chars: int | None = None) -> dict[str, Any]:
        """What a model reads (tool results, the answer's evidence): id, level, citation, text, and a
        title, stale or truncated mark only when set. The source path, ids and scores stay out: they
        cost tokens on every item and tell a model nothing it can cite."""
        item = self if chars is None else self.clipped(chars)
        return {name: value for name in BRIEF_FIELDS if (value := getattr(item, name)) not in (None, False)}


class DocumentRef(BaseModel):
    """A whole document an item was built from (a recollection's audit trail)."""

    id: int | None = Field(None, description="None when the document is gone")
    document: str = Field(description="the file as cited")
    title: str | None = None
    source: str | None = None
    cite: str


class Expansion(BaseModel):
    """An item and its neighbours in the pyramid: the pages it rests on, the insights and concepts it
    is built from or feeds, its document's abstract, and for a recollection its sources."""

    item: Evidence
    pages: list[Evidence] = Field(default_factory=list, description="the page(s) the item rests on")
    insights: list[Evidence] = Field(
        default_factory=list, description="a concept's insights; a page's insights"
    )
    concepts: list[Evidence] = Field(
        default_factory=list, description="concepts built on it (or an abstract's)"
    )
    abstract: list[Evidence] = Field(default_factory=list, description="its document's abstract")
    sources: list[Evidence] = Field(
        default_factory=list, description="the items a recollection was built from"
    )
    documents: list[DocumentRef] = Field(
        default_factory=list, description="documents a recollection cites whole"
    )
    recollections: list[Evidence] = Field(default_factory=list, description="recollections built on the item")

    def neighbours(self) -> list[Evidence]:
        return [
            *self.pages,
            *self.insights,
            *self.concepts,
            *self.abstract,
            *self.sources,
            *self.recollections,
        ]

    def brief(self, chars: int | None = None) -> dict[str, Any]:
        """What a model reads: every item brief (texts cut to ``chars``), empty kinds left out."""
        out: dict[str, Any] = {"item": self.item.brief(chars)}
        for name in NEIGHBOUR_KINDS:
            items = getattr(self, name)
            if items:
                out[name] = [e.brief(chars) for e in items]
        if self.documents:
            out["documents"] = [
                d.model_dump(include={"document", "title", "cite"}, exclude_none=True) for d in self.documents
            ]
        return out


BRIEF_FIELDS = ("id", "level", "cite", "title", "text", "stale", "truncated")
NEIGHBOUR_KINDS = ("pages", "insights", "concepts", "abstract", "sources", "recollections")


QUOTE_CHARS = 300  # what a Citation quotes of the item behind it


class Citation(BaseModel):
    """One source an answer cites, resolved to the evidence item that backs it."""

    cite: str = Field(description="the citation as written in the answer, e.g. [handbook.md, p. 2]")
    document: str | None = Field(None, description="the file as cited; None for a recollection")
    source: str | None = Field(None, description="the document's full source path")
    pages: list[int] = Field(default_factory=list)
    item_id: int = Field(description="the evidence item that backs the citation")
    level: Level
    quote: str = Field(description="what that item says (shortened)")


class Note(BaseModel):
    """A fact the search agent kept while researching, with the items it rests on."""

    text: str
    item_ids: list[int]


class Answer(BaseModel):
    """The reply to a question, the sources it cites, and what it cost."""

    question: str
    text: str = Field(description="the answer with citations [file, p. N]; without a model, a notice")
    citations: list[Citation] = Field(
        default_factory=list, description="every source the text cites, resolved"
    )
    usage: Usage = Field(default_factory=Usage, description="model requests and tokens, research and answer")
    answer_usage: Usage = Field(default_factory=Usage, description="the answer step alone")
    elapsed: float = Field(0.0, description="seconds")
    model: str | None = Field(None, description="the model that answered; None: no LLM, evidence only")
    levels: list[Level] = Field(default_factory=list, description="levels searched")
    evidence: list[Evidence] = Field(
        default_factory=list, description="what the answer was written from, best first"
    )
    notes: list[Note] = Field(default_factory=list, description="facts the search agent kept")
    searches: list[str] = Field(default_factory=list, description="search terms the agent used")
    research: str | None = Field(None, description="the search agent's closing remark")
    partial: bool = Field(
        False,
        description="not the whole answer: the research or the answer step stopped early (budget, a "
        "misbehaving model); the text uses what was found, or is the evidence itself",
    )
    stopped: str | None = Field(None, description="why the answer is partial")
    rejected_citations: list[str] = Field(
        default_factory=list,
        description="citations the model kept writing that are not in the evidence, removed from the text",
    )
    notices: list[str] = Field(
        default_factory=list,
        description="what ask did differently and why (e.g. a model that made no tool call: the answer "
        "is written from a search for the question)",
    )
    relevance: float | None = Field(
        None, description="without a model: the cosine similarity of the best evidence to the question"
    )
    learned: Learned | None = Field(
        None, description="with learn: the recollection the answer's finding became, or why none"
    )

    @property
    def answered(self) -> bool:
        """Whether a model wrote the text (False: no LLM, the evidence is the result)."""
        return self.model is not None


# --- recollections learned from answers, their status and audit trail ------------------------------

RecollectionKind = Literal["distilled", "user", "learned"]
RecollectionStatus = Literal["valid", "stale", "revised", "retired"]


class Learned(BaseModel):
    """What ``ask(..., learn=True)`` did with the answer's finding."""

    action: Literal["added", "revised", "none"]
    recollection: int | None = Field(None, description="the learned recollection's item id")
    text: str | None = Field(None, description="the statement stored")
    sources: list[int] = Field(default_factory=list, description="the cited items it rests on")
    reason: str | None = Field(None, description="why nothing was learned, or what was revised")
    skipped: list[str] = Field(
        default_factory=list, description="answer sentences not learned, each with the reason"
    )


class RecollectionSource(BaseModel):
    """One step of a recollection's audit trail: the item it rests on, its pages, its file."""

    item_id: int | None = Field(None, description="None when the item is gone (see ref)")
    level: Level | None = None
    text: str | None = None
    pages: list[int] = Field(default_factory=list)
    document_id: int | None = None
    document: str | None = Field(None, description="the document's title")
    source: str | None = Field(None, description="the file (the document's source path)")
    ref: str = Field("", description="the readable trail kept when the source goes")


class RecollectionView(BaseModel):
    """A recollection with its kind, status, provenance and (learned ones) question, model, history."""

    id: int
    kind: RecollectionKind
    status: RecollectionStatus
    text: str
    distiller: str = ""
    question: str | None = None
    model: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    verified_at: datetime | None = None
    sources: list[RecollectionSource] = Field(default_factory=list)
    history: list[dict[str, Any]] = Field(
        default_factory=list, description="earlier versions and verdicts, oldest first"
    )

    @property
    def cite(self) -> str:
        return f"[recollection {self.id}]"


class Verdict(BaseModel):
    """What ``recollections verify`` decided about one learned recollection."""

    id: int
    status: Literal["valid", "revised", "retired"]
    text: str
    reason: str


class VerifyReport(BaseModel):
    checked: int = 0
    verdicts: list[Verdict] = Field(default_factory=list)
    model: str | None = Field(None, description="the model that judged; None: the cheap check")
    usage: Usage = Field(default_factory=Usage)

    def count(self, status: str) -> int:
        return sum(1 for v in self.verdicts if v.status == status)


# --- what the collection holds: pyramid overview ----------------------------------------------------


class FormatCount(BaseModel):
    format: str
    documents: int
    files: int = Field(description="files they came from (a feed file holds several documents)")
    pages: int
    bytes: int


class DocumentBrief(BaseModel):
    id: int
    title: str
    source: str
    format: str
    pages: int
    bytes: int | None = Field(None, description="size of the file it came from")


class Theme(BaseModel):
    """A concept central to the collection: concepts of ``documents`` documents are close to it."""

    name: str
    text: str = Field(description="the concept's description")
    concept_id: int
    documents: int = Field(description="documents it spans (its own included)")
    titles: list[str] = Field(default_factory=list, description="those documents, nearest first")


class RecollectionBrief(BaseModel):
    id: int
    kind: RecollectionKind
    status: RecollectionStatus
    text: str


class Grant(BaseModel):
    """A PostgreSQL role's access to a collection (``pyramid grant``)."""

    role: str
    access: Literal["read", "write"]


class CollectionInfo(BaseModel):
    """One collection: what it holds and who may read or write it."""

    id: int
    name: str
    documents: int = 0
    items: int = 0
    created_at: datetime | None = None
    grants: list[Grant] = Field(default_factory=list)


class ApiToken(BaseModel):
    """An API token of ``pyramid serve`` (never the token itself: only the server's record of it)."""

    id: int
    name: str = ""
    role: str = Field(description="the PostgreSQL role every request with this token runs as")
    collections: list[str] = Field(description="what its requests read; written: the first, with write")
    write: bool = False
    created_at: datetime | None = None
    last_used_at: datetime | None = None


class Overview(BaseModel):
    """What ``pyramid overview`` prints: documents by format and size, the main themes, what the
    recollections say, and questions the pyramid can answer well."""

    documents: list[DocumentBrief] = Field(default_factory=list)
    formats: list[FormatCount] = Field(default_factory=list)
    pages: int = 0
    bytes: int = 0
    themes: list[Theme] = Field(default_factory=list)
    recollections: dict[str, int] = Field(
        default_factory=dict, description="live recollections per kind (retired ones left out)"
    )
    says: list[RecollectionBrief] = Field(default_factory=list, description="some of them, learned first")
    questions: list[str] = Field(default_factory=list, description="example questions")
    questions_by: str | None = Field(
        None, description="the model that wrote the questions; None: built from the themes"
    )
    notices: list[str] = Field(
        default_factory=list, description="e.g. why the model's questions were not used"
    )


AskEventKind = Literal["tool_call", "tool_result", "text", "reset", "answer"]


@dataclass
class AskEvent:
    """What ``ask`` reports while it works, for a listener (``on_event``) that shows progress:

    - ``tool_call``: the research calls ``tool`` (search, expand, note) with ``args``;
    - ``tool_result``: that call is answered; ``summary`` says what came back;
    - ``text``: the next piece of the answer as the model writes it;
    - ``reset``: the answer written so far was rejected (a citation did not resolve) and is written
      again: drop the text shown;
    - ``answer``: the finished ``Answer``, citations validated (always the last event).
    """

    kind: AskEventKind
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    summary: str | None = None
    text: str | None = None
    answer: Answer | None = None


# Called on the library's own thread, in order; it must not block (hand the event over and return).
AskListener = Callable[[AskEvent], None]
