"""The HTTP layer's cost: search through ``pyramid serve`` versus the library call, in the same run,
and how soon a streamed ``ask`` shows its first words.

    python benchmarks/serve.py                      # examples/docs, 1/8/32 clients, 200 requests each
    python benchmarks/serve.py --requests 400 --clients 1,8,32,64

The example documents are ingested (extractive distiller) into a throw-away database. Then, for each
number of concurrent clients, the same queries are run (a) as ``Pyramid.asearch`` calls in this
process and (b) as ``GET /api/search`` against a real ``pyramid serve`` process on loopback (httpx,
keep-alive). Reported: requests/s, p50 and p95 latency, and the HTTP/library ratio of p50.

Streaming: an in-process server whose scripted model streams the answer in 20 pieces, 50 ms apart;
time to the first ``text`` event of ``POST /api/ask`` (stream=true) versus time to the ``answer``
event. Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_pages import RESULTS, fresh_database

ROOT = Path(__file__).resolve().parent.parent
QUERIES = [
    "Holm Orchards pilot start",
    "battery of the Picker P3",
    "top speed in orchard mode",
    "who reviews the incident log",
    "Picker P4 prototype delay",
    "apples per hour",
    "Sandvik test robot firmware",
    "Field Operations lead",
    "Series B funding round",
    "customer contracts renewal",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def load(call: Callable[[str], Awaitable[Any]], clients: int, requests: int) -> dict[str, float]:
    """``requests`` calls spread over ``clients`` concurrent workers; latency of each, in ms."""
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            await call(QUERIES[n % len(QUERIES)])
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - started
    return {
        "rps": round(requests / wall, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(pct(latencies, 0.95), 2),
    }


def start_server(dsn: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYRAMID_DSN": dsn, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "pyramid", "--data-dir", str(data_dir), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("pyramid serve did not come up")


async def search_runs(kp: Any, port: int, clients: list[int], requests: int) -> list[dict[str, Any]]:
    import httpx

    rows = []
    limits = httpx.Limits(max_connections=max(clients), max_keepalive_connections=max(clients))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as http:

        async def over_http(q: str) -> None:
            reply = await http.get("/api/search", params={"q": q})
            reply.raise_for_status()

        async def library(q: str) -> None:
            await kp.asearch(q)

        for q in QUERIES:  # warm both: model loaded, plans cached, connections open
            await library(q)
            await over_http(q)
        for n in clients:
            lib = await load(library, n, requests)
            web = await load(over_http, n, requests)
            rows.append(
                {
                    "clients": n,
                    "library": lib,
                    "http": web,
                    "p50_ratio": round(web["p50_ms"] / lib["p50_ms"], 2),
                }
            )
            print(
                f"{n:>3} clients  library {lib['rps']:>7} req/s p50 {lib['p50_ms']:>7} ms p95 {lib['p95_ms']:>7} ms"
                f" | http {web['rps']:>7} req/s p50 {web['p50_ms']:>7} ms p95 {web['p95_ms']:>7} ms"
                f" | p50 ratio {rows[-1]['p50_ratio']}",
                flush=True,
            )
    return rows


def delayed_model(pieces: int, delay: float) -> Any:
    """Research: one search, then done. Answer: ``pieces`` words, ``delay`` s apart, ending with the
    first evidence item's citation."""
    from pydantic_ai.messages import ModelMessage, ModelRequest, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

    def returns(messages: list[ModelMessage], name: str) -> list[Any]:
        return [
            p.content
            for m in messages
            if isinstance(m, ModelRequest)
            for p in m.parts
            if isinstance(p, ToolReturnPart) and p.tool_name == name
        ]

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> Any:
        if "search" in {t.name for t in info.function_tools}:
            if not returns(messages, "search"):
                yield {0: DeltaToolCall(name="search", json_args='{"query": "Holm Orchards pilot"}')}
            else:
                yield "done"
            return
        cite = returns(messages, "evidence")[-1]["items"][0]["cite"]
        for n in range(pieces):
            await asyncio.sleep(delay)
            yield f"word{n} " if n < pieces - 1 else f"{cite}."

    return FunctionModel(stream_function=stream)


def serve_in_thread(kp: Any, port: int, model: Any = None) -> Callable[[], None]:
    import uvicorn

    from pyramid.serve import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(kp, model=model), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return stop


def stream_run(kp: Any, pieces: int, delay: float, runs: int) -> dict[str, Any]:
    import httpx
    import uvicorn

    from pyramid.serve import create_app

    port = free_port()
    app = create_app(kp, model=delayed_model(pieces, delay))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    first, whole = [], []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            seen_text = None
            body = {"question": "When does the Holm Orchards pilot start?", "stream": True}
            with httpx.stream("POST", f"http://127.0.0.1:{port}/api/ask", json=body, timeout=120) as reply:
                last = ""
                for line in reply.iter_lines():
                    if line.strip() == "event: text" and seen_text is None:
                        seen_text = time.perf_counter() - started
                    if line.strip() == "event: answer":
                        whole.append(time.perf_counter() - started)
                    last = line or last
            if seen_text is None:
                raise SystemExit(f"the streamed ask sent no text; its last line: {last[:500]}")
            first.append(seen_text)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return {
        "pieces": pieces,
        "delay_s": delay,
        "first_text_ms": round(statistics.median(first) * 1000, 1),
        "answer_ms": round(statistics.median(whole) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per run")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--stream-runs", type=int, default=3)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="serve from a uvicorn thread over the benchmark's own Pyramid instead of a `pyramid serve` process",
    )
    args = parser.parse_args()
    clients = [int(n) for n in args.clients.split(",")]

    from pyramid import Pyramid
    from pyramid.store.database import stop_embedded

    with tempfile.TemporaryDirectory(prefix="kp-bench-serve-") as tmp:
        dsn, data_dir = fresh_database(Path(tmp))
        server = None
        try:
            # The same encoder priority as `pyramid serve` (encoder_nice 0), so both sides encode alike.
            with Pyramid.open(dsn=dsn, model=None, encoder_nice=0) as kp:
                report = kp.ingest([ROOT / "examples" / "docs"])
                assert report.ok, report.summary()
                items = sum(kp.stats().items.values())
                print(f"examples/docs: {len(report.results)} documents, {items} items", flush=True)
                port = free_port()
                if args.in_process:
                    stop = serve_in_thread(kp, port)
                    rows = asyncio.run(search_runs(kp, port, clients, args.requests))
                    stop()
                else:
                    server = start_server(dsn, port, data_dir)
                    rows = asyncio.run(search_runs(kp, port, clients, args.requests))
                    server.terminate()
                    server.wait(timeout=30)
                    server = None
                streaming = stream_run(kp, pieces=20, delay=0.05, runs=args.stream_runs)
                print(
                    f"streamed ask: first text after {streaming['first_text_ms']} ms, "
                    f"whole answer after {streaming['answer_ms']} ms (20 pieces, 50 ms apart)"
                )
        finally:
            if server is not None:
                server.kill()
            stop_embedded(data_dir)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other work while measured)",
        "corpus": "examples/docs",
        "items": items,
        "requests_per_run": args.requests,
        "server": "uvicorn thread in the same process" if args.in_process else "a `pyramid serve` process",
        "search": rows,
        "stream": streaming,
    }
    (RESULTS / "serve.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
