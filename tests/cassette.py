"""Recorded conversations with a real model server: an httpx transport that records every exchange
(request body, response status and body) into a small JSON file under ``tests/cassettes/``, and one
that replays them, so the default suite covers a real model's behaviour without the server.

A replayed request is matched by its body (model, messages, tools, response_format, max_tokens):
when a prompt changes, the cassette no longer matches and the test says to record it again
(``PYRAMID_RECORD_CASSETTES=1 pytest tests/test_cassettes.py``, with the server in the cache)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

CASSETTES = Path(__file__).resolve().parent / "cassettes"


def _key(body: bytes) -> str:
    data = json.loads(body or b"{}")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class Recording(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        self.exchanges.append(
            {
                "path": request.url.path,
                "key": _key(body),
                "request": json.loads(body or b"{}"),
                "status": response.status_code,
                "response": json.loads(content or b"null"),
            }
        )
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    def save(self, name: str) -> Path:
        CASSETTES.mkdir(exist_ok=True)
        path = CASSETTES / f"{name}.json"
        path.write_text(json.dumps(self.exchanges, indent=1, ensure_ascii=False) + "\n")
        return path


class Replay(httpx.AsyncBaseTransport):
    def __init__(self, name: str) -> None:
        self.path = CASSETTES / f"{name}.json"
        self.exchanges: list[dict[str, Any]] = json.loads(self.path.read_text())
        self.used: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = _key(await request.aread())
        for n, exchange in enumerate(self.exchanges):
            if n not in self.used and exchange["key"] == key:
                self.used.append(n)
                return httpx.Response(exchange["status"], json=exchange["response"])
        raise AssertionError(
            f"{self.path.name} holds no answer to this request (a prompt or schema changed?): "
            "record it again with PYRAMID_RECORD_CASSETTES=1"
        )


def chat_model(transport: httpx.AsyncBaseTransport, base_url: str = "http://127.0.0.1:1/v1") -> Any:
    """``openai-chat:local`` over ``transport``."""
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    client = httpx.AsyncClient(transport=transport, timeout=None)
    return OpenAIChatModel(
        "local", provider=OpenAIProvider(base_url=base_url, api_key="unused", http_client=client)
    )
