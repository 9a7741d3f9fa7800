"""The JSON API under ``/api``: each endpoint is one call of the ``Pyramid`` async API."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ..errors import SearchError
from .common import ServeConfig, error, pyramid_of

if TYPE_CHECKING:
    from ..api import Pyramid
    from ..models import AskEvent

router = APIRouter(prefix="/api")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_CHUNK = 1024 * 1024


def _kp(request: Request) -> Pyramid:
    return pyramid_of(request)


def _config(request: Request) -> ServeConfig:
    return request.app.state.config


@router.get("/documents", summary="Every stored document")
async def documents(request: Request, status: str | None = None) -> list[dict[str, Any]]:
    docs = await _kp(request).adocuments(status=status)
    return [doc.model_dump(mode="json") for doc in docs]


@router.get("/documents/{ref}", summary="One document: its levels top-down, and its pages")
async def document(request: Request, ref: str, pages: bool = True) -> dict[str, Any]:
    view = await _kp(request).adocument(int(ref) if ref.isdigit() else ref, pages=pages)
    return view.model_dump(mode="json")


@router.get("/items/{item_id}", summary="One item with its provenance both ways")
async def item(request: Request, item_id: int) -> dict[str, Any]:
    expansion = await _kp(request).aexpand(item_id)
    return expansion.model_dump(mode="json")


@router.get("/search", summary="Hybrid search (BM25 + vector per level, fused, optionally reranked)")
async def search(
    request: Request,
    q: Annotated[str, Query(description="what to look for (plain words)")],
    level: Annotated[list[str] | None, Query(description="levels to search; repeatable")] = None,
    k: Annotated[int | None, Query(description="how many results")] = None,
    mode: Literal["hybrid", "bm25", "vector"] = "hybrid",
    fusion: Literal["rrf", "weighted"] | None = None,
    rerank: Annotated[
        str | None, Query(description="'true' for the configured cross-encoder, or a model name/path")
    ] = None,
    doc: Annotated[list[str] | None, Query(description="globs over document sources; repeatable")] = None,
) -> list[dict[str, Any]]:
    if not q.strip():
        raise SearchError("the query is empty")
    choice: bool | str | None
    choice = None if rerank in (None, "", "false", "0") else True if rerank in ("true", "1") else rerank
    levels = [part for value in level or [] for part in value.split(",") if part] or None
    hits = await _kp(request).asearch(
        q, levels=levels, k=k, mode=mode, fusion=fusion, rerank=choice, documents=doc
    )
    return [hit.model_dump(mode="json") for hit in hits]


class AskRequest(BaseModel):
    question: str = Field(description="the question, in plain words")
    levels: list[str] | None = Field(None, description="levels the agent may search (default: all but pages)")
    stream: bool = Field(False, description="server-sent events: steps, answer text, then the answer")


@router.post(
    "/ask",
    summary="Answer a question with citations [file, p. N]",
    description="With stream=true the reply is text/event-stream: `step` events (search, expand, "
    "note) as the research makes them, `text` events with the answer as it is written (`reset` when a "
    "draft was rejected and is written again, or replaced by the final answer: `reason` says why), then "
    "one `answer` event (the validated citations, usage, `partial`/`stopped`, `notices`, "
    "`rejected_citations`) or one `error` event.",
)
async def ask(request: Request, body: AskRequest) -> Any:
    kp, config = _kp(request), _config(request)
    if not body.question.strip():
        raise SearchError("ask needs a question")
    if not body.stream:
        answer = await kp.aask(body.question, model=config.model, levels=body.levels)
        return answer.model_dump(mode="json")
    return StreamingResponse(
        _ask_events(kp, config, body),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def event_data(event: AskEvent) -> tuple[str, dict[str, Any]]:
    """An ask event as an SSE event name and its JSON."""
    if event.kind == "text":
        return "text", {"text": event.text}
    if event.kind == "reset":
        return "reset", {"reason": event.summary}
    return "step", {
        "phase": "start" if event.kind == "tool_call" else "done",
        "tool": event.tool,
        "args": event.args or {},
        "summary": event.summary,
    }


async def _ask_events(kp: Pyramid, config: ServeConfig, body: AskRequest) -> AsyncIterator[str]:
    from ..errors import PyramidError
    from .common import pyramid_error

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[AskEvent | None] = asyncio.Queue()

    def listen(event: AskEvent) -> None:
        # Called on the library's own thread: hand the event over to this loop.
        loop.call_soon_threadsafe(queue.put_nowait, event)

    task = asyncio.ensure_future(
        kp.aask(body.question, model=config.model, levels=body.levels, on_event=listen)
    )
    task.add_done_callback(lambda _t: loop.call_soon_threadsafe(queue.put_nowait, None))
    try:
        while (event := await queue.get()) is not None:
            if event.kind != "answer":
                name, data = event_data(event)
                yield _sse(name, data)
        try:
            answer = task.result()
        except PyramidError as exc:
            response = pyramid_error(exc)
            yield _sse("error", json.loads(bytes(response.body)))
            return
        except Exception as exc:
            yield _sse("error", {"error": "internal", "detail": f"unexpected {type(exc).__name__}"})
            return
        yield _sse("answer", answer.model_dump(mode="json"))
    finally:
        if not task.done():  # the client went away: stop the research
            task.cancel()


@router.get("/stats", summary="Items per level, documents per status, tokens per step and document")
async def stats(request: Request) -> dict[str, Any]:
    result = await _kp(request).astats()
    return {**result.model_dump(mode="json"), "usage": result.usage.model_dump()}


@router.post("/ingest", summary="Ingest one uploaded file (replacing an earlier upload of the same name)")
async def ingest(request: Request, file: Annotated[UploadFile, File(description="the document")]) -> Any:
    kp, config = _kp(request), _config(request)
    token = getattr(request.state, "token", None)
    if token is not None and not token.write:
        return error(403, "forbidden", "this API token may only read (pyramid tokens create --write)")
    name = _SAFE_NAME.sub("_", Path(file.filename or "").name).strip(" .")
    if not name:
        return error(400, "bad_request", "the upload needs a file name (its extension names the format)")
    folder = config.upload_dir or (kp.settings.data_dir / "uploads")
    if kp.collection != "default":  # one folder per collection: the same name in two stays two files
        folder = folder / kp.collection
    target = folder / name
    partial = folder / f".{name}.part"
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    size = 0
    try:
        with partial.open("wb") as out:
            while chunk := await file.read(_CHUNK):
                size += len(chunk)
                if size > config.max_upload:
                    return error(
                        413, "too_large", f"the upload is over the limit of {config.max_upload:,} bytes"
                    )
                out.write(chunk)
        if size == 0:
            return error(400, "bad_request", f"{name}: the upload is empty")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    report = await kp.aingest([target])
    summary = report.summary()
    if report.failed:
        reason = report.failed[0].reason or "the file could not be ingested"
        return JSONResponse(
            {"error": "ingest_failed", "detail": f"{name}: {reason}", "report": summary}, status_code=422
        )
    return summary
