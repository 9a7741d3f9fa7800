"""A real OpenAI-compatible model server for the real-model tests and benchmarks: llama.cpp's
``llama-server`` with a small GGUF model, both from the cache that ``scripts/llama-server.sh`` fills
(``$PYRAMID_LLAMA_CACHE``, default ``~/.cache/knowledge-pyramid/llama``)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MODELS = {
    "qwen": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",  # instruction-tuned, tool-calling template
    "smollm2": "smollm2-135m-instruct-q4_1.gguf",
}
ALIAS = "local"


def cache_dir() -> Path:
    return Path(
        os.environ.get("PYRAMID_LLAMA_CACHE") or Path.home() / ".cache" / "knowledge-pyramid" / "llama"
    )


def missing(model: str = "qwen") -> str | None:
    """Why the server cannot start here (None when it can)."""
    folder = cache_dir()
    for path in (folder / "llama-server", folder / MODELS[model]):
        if not path.exists():
            return f"{path} is missing: run scripts/llama-server.sh"
    return None


@dataclass
class Server:
    base_url: str  # http://127.0.0.1:PORT/v1
    log: Path

    def env(self) -> dict[str, str]:
        """What the CLI needs to reach it as `openai-chat:local`."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": "unused"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(model: str = "qwen", *, log: Path, context: int = 4096, max_tokens: int = 512) -> Iterator[Server]:
    """Start the server on a free port, wait for ``/health``, stop it afterwards.

    ``-t 1``: one thread, because other work shares the machine's cores (two threads ran four times
    slower under contention: spin barriers). ``-n`` caps every generation server-side as well."""
    folder = cache_dir()
    port = _free_port()
    command = [
        str(folder / "llama-server"),
        "-m", str(folder / MODELS[model]),
        "--alias", ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--jinja",
        "-c", str(context),
        "-np", "1",
        "-t", "1",
        "-n", str(max_tokens),
        "--no-webui",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {process.returncode}: see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama-server did not become healthy in 180 s: see {log}")
            time.sleep(0.5)
        yield Server(f"http://127.0.0.1:{port}/v1", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
