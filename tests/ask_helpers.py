"""Helpers of the ask tests: a small pyramid built over really ingested pages, and scripted models.

Until the distiller is merged, ingest stores pages only; ``build_pyramid`` adds the levels above them
the way the extractive distiller shapes them, from the pages' own sentences: insights (one sentence,
tied to its page), one concept per page (built from its insights), one abstract per document (built
from its concepts) and one recollection across two documents. Every text is real corpus text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
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


def build_pyramid(kp: Any) -> dict[str, int]:
    """Add insights, concepts, abstracts and one recollection over every stored document's pages;
    returns item text → id for the items written."""
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
                items.append(NewItem(key=key, level="insight", text=sentence, ordinal=len(items) + 1,
                                     pages=[page.ordinal], sources=[page.id]))
                keys.append(key)
            if keys:
                heading = next((ln.lstrip("# ").strip() for ln in page.text.splitlines() if ln.startswith("#")), None)
                text = " ".join(item.text for item in items if item.key in keys[:3])
                items.append(NewItem(key=f"c{page.ordinal}", level="concept", title=heading or doc.title, text=text,
                                     ordinal=page.ordinal, pages=[page.ordinal], sources=keys))
                concepts.append(f"c{page.ordinal}")
        if concepts:
            summary = " ".join(next(i.text for i in items if i.key == c).split(". ")[0].rstrip(".") + "." for c in concepts[:3])
            items.append(NewItem(key="abstract", level="abstract", text=summary, sources=concepts))
        plans.append((doc.id, items))

    async def write() -> dict[str, int]:
        texts = [item.text for _, items in plans for item in items]
        vectors = iter(await kp._rt.embedder.aencode_documents(texts))
        ids: dict[str, int] = {}
        async with kp._rt.db.connection() as conn, conn.transaction():
            for doc_id, items in plans:
                for item in items:
                    item.embedding = next(vectors)
                keys = await write_items(conn, doc_id, items)
                ids.update({item.text: keys[item.key] for item in items})
        return ids

    ids = kp._portal.call(write())
    recollection = _recollection(kp, ids)
    ids.update(recollection)
    return ids


def _recollection(kp: Any, ids: dict[str, int]) -> dict[str, int]:
    """One memory across the handbook and the news feed: who reviews the incident log."""
    from pyramid.store import NewItem, write_items

    handbook = next(t for t in ids if t.startswith("The Head of Safety, Ruth Calder"))
    news = next(t for t in ids if t.startswith("She now reviews our incident log"))
    text = "Ruth Calder, the Head of Safety, reviews the incident log every week (handbook and news agree)."
    docs = {d.source.rsplit("/", 1)[-1]: d.id for d in kp.documents()}

    async def write() -> dict[str, int]:
        vector = (await kp._rt.embedder.aencode_documents([text]))[0]
        item = NewItem(key="r", level="recollection", text=text, embedding=vector, distiller="user",
                       sources=[ids[handbook], ids[news]], source_documents=[docs["handbook.md"]])
        async with kp._rt.db.connection() as conn, conn.transaction():
            keys = await write_items(conn, None, [item])
        return {text: keys["r"]}

    return kp._portal.call(write())


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
