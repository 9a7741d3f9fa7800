"""Helpers of the ask tests: a small pyramid built over really ingested pages, and scripted models.

Where ingest stores pages only (no distiller), ``build_pyramid`` adds the levels above them the way
the extractive distiller shapes them, from the pages' own sentences: insights (one sentence, tied to
its page), one concept per page (built from its insights), one abstract per document (built from its
concepts). Where ingest distilled, its levels are used. Either way one user recollection across two
documents is added. Every text is real corpus text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_MARKUP = re.compile(r"[*_`]+")


def page_sentences(text: str) -> list[str]:
    """Plain sentences of a page: headings, table rows and list markers dropped."""
    prose = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "|", "---")):
            continue
        prose.append(_MARKUP.sub("", line.lstrip("-*• ").strip()))
    found = []
    for sentence in _SENTENCE_END.split(" ".join(prose)):
        sentence = sentence.strip()
        if 25 <= len(sentence) <= 300 and sentence[-1] in ".!?":
            found.append(sentence)
    return found


def ingest_examples(kp: Any) -> dict[str, int]:
    """Ingest the repository's example documents and make sure there is a pyramid over them (see
    ``build_pyramid``); returns text → id of every stored item."""
    from conftest import ROOT

    report = kp.ingest([ROOT / "examples" / "docs"])
    assert report.ok and len(report.added) == 11, report.summary()
    return build_pyramid(kp)


def item_id(ids: dict[str, int], prefix: str) -> int:
    """The id of an item whose text starts with ``prefix``."""
    return next(i for text, i in ids.items() if text.startswith(prefix))


def build_pyramid(kp: Any) -> dict[str, int]:
    """Add insights, concepts and abstracts over every stored document's pages, unless ingest already
    distilled them (then its levels are used as they are), and one user recollection; returns text →
    id of every stored item."""
    if not any(level != "page" for doc in kp.documents() for level in doc.items):
        _distill_sentences(kp)
    _recollection(kp)
    return kp.run(_all_items(kp, "SELECT text, id FROM items ORDER BY id DESC"))


async def _all_items(kp: Any, sql: str, *params: Any) -> dict[str, int]:
    async with kp.runtime.db.connection() as conn:
        cur = await conn.execute(sql, params)
        return {text: item_id for text, item_id in await cur.fetchall()}


def _distill_sentences(kp: Any) -> None:
    from pyramid.store import NewItem, write_items

    plans: list[tuple[int, list[NewItem]]] = []
    for doc in kp.documents():
        view = kp.document(doc.id)
        items: list[NewItem] = []
        concepts: list[str] = []
        for page in view.pages:
            keys = []
            for n, sentence in enumerate(page_sentences(page.text)):
                key = f"i{page.ordinal}.{n}"
                items.append(
                    NewItem(
                        key=key,
                        level="insight",
                        text=sentence,
                        ordinal=len(items) + 1,
                        pages=[page.ordinal],
                        sources=[page.id],
                    )
                )
                keys.append(key)
            if keys:
                heading = next(
                    (ln.lstrip("# ").strip() for ln in page.text.splitlines() if ln.startswith("#")), None
                )
                text = " ".join(item.text for item in items if item.key in keys[:3])
                items.append(
                    NewItem(
                        key=f"c{page.ordinal}",
                        level="concept",
                        title=heading or doc.title,
                        text=text,
                        ordinal=page.ordinal,
                        pages=[page.ordinal],
                        sources=keys,
                    )
                )
                concepts.append(f"c{page.ordinal}")
        if concepts:
            summary = " ".join(
                next(i.text for i in items if i.key == c).split(". ")[0].rstrip(".") + "."
                for c in concepts[:3]
            )
            items.append(NewItem(key="abstract", level="abstract", text=summary, sources=concepts))
        plans.append((doc.id, items))

    async def write() -> None:
        texts = [item.text for _, items in plans for item in items]
        vectors = iter(await kp.runtime.embedder.aencode_documents(texts))
        async with kp.runtime.db.connection() as conn, conn.transaction():
            for doc_id, items in plans:
                for item in items:
                    item.embedding = next(vectors)
                await write_items(conn, doc_id, items)

    kp.run(write())


RECOLLECTION = (
    "Ruth Calder, the Head of Safety, reviews the incident log every week (handbook and news agree)."
)


def _recollection(kp: Any) -> None:
    """One memory across the handbook and the news feed, built on an insight of each."""
    from pyramid.store import NewItem, write_items

    find = (
        "SELECT i.text, i.id FROM items i JOIN documents d ON d.id = i.document_id"
        " WHERE i.level = 'insight' AND d.source LIKE %s AND i.text LIKE %s ORDER BY i.id LIMIT 1"
    )
    [handbook] = kp.run(_all_items(kp, find, "%/handbook.md", "%Ruth Calder%")).values()
    [news] = kp.run(_all_items(kp, find, "%/news.rss#fh-2031-04", "%incident log%")).values()
    [doc] = [d.id for d in kp.documents() if d.source.endswith("/handbook.md")]

    async def write() -> None:
        vector = (await kp.runtime.embedder.aencode_documents([RECOLLECTION]))[0]
        item = NewItem(
            key="r",
            level="recollection",
            text=RECOLLECTION,
            embedding=vector,
            distiller="user",
            sources=[handbook, news],
            source_documents=[doc],
        )
        async with kp.runtime.db.connection() as conn, conn.transaction():
            await write_items(conn, None, [item])

    kp.run(write())


# --- scripted models -------------------------------------------------------------------------------------


def tool_returns(messages: list[ModelMessage], name: str | None = None) -> list[ToolReturnPart]:
    return [
        part
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart) and (name is None or part.tool_name == name)
    ]


Step = Callable[[list[ModelMessage], AgentInfo], ModelResponse]


def framed_evidence(messages: list[ModelMessage]) -> dict[str, Any] | None:
    """The evidence a framed answer step got in its user prompt (``<evidence>…</evidence>``)."""
    for message in reversed(messages):
        for part in getattr(message, "parts", []):
            content = getattr(part, "content", None)
            if isinstance(part, UserPromptPart) and isinstance(content, str) and "<evidence>" in content:
                inside = content.split("<evidence>", 1)[1].rsplit("</evidence>", 1)[0]
                return json.loads(inside.replace("&lt;", "<"))
    return None


def evidence_pack(messages: list[ModelMessage]) -> dict[str, Any]:
    """The evidence of an answer step: the ``evidence`` tool result, or the framed prompt's."""
    returned = tool_returns(messages, "evidence")
    if returned:
        return returned[-1].content  # type: ignore[no-any-return]
    framed = framed_evidence(messages)
    assert framed is not None, "the answer step got no evidence"
    return framed


def scripted(*steps: Step | ModelResponse) -> tuple[FunctionModel, list[list[ModelMessage]]]:
    """A FunctionModel that plays ``steps`` in order (a step is a response, or a function of what the
    model received), and the list of every message list it received."""
    seen: list[list[ModelMessage]] = []

    def play(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(list(messages))
        step = steps[min(len(seen), len(steps)) - 1]
        return step if isinstance(step, ModelResponse) else step(messages, info)

    return FunctionModel(play), seen


def call(tool: str, **args: Any) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(tool, args)])


def text(content: str) -> ModelResponse:
    return ModelResponse(parts=[TextPart(content)])


def cite_evidence(claim: str, containing: str = "") -> Step:
    """An answer step: ``claim``, cited with the first evidence item whose text has ``containing``."""

    def step(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        pack = evidence_pack(messages)
        item = next(i for i in pack["items"] if containing in i["text"])
        return text(f"{claim} {item['cite']}.")

    return step
