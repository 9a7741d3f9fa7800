"""The cache of validated LLM outputs (table ``llm_outputs``).

Every call's key is a sha256 of what its output depends on: the step, the model, the instructions
and the full user message (which carries every input). A run that crashed, or failed on one
window, resumes without paying again for the calls that had succeeded; re-ingesting an unchanged
document with ``--force`` costs nothing. After a version is stored, only the outputs it was built
from stay (``forget_unused``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..store import llm_outputs

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..models import Usage
    from ..runtime import Runtime


def digest(*parts: Any) -> str:
    return hashlib.sha256(
        json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode()
    ).hexdigest()


class OutputCache:
    """The cached outputs of one document (``source``), or of the corpus step (``source`` None)."""

    def __init__(self, rt: Runtime, source: str | None, model: str) -> None:
        self.rt = rt
        self.source = source
        self.model = model
        self.known: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        self._writes: list[asyncio.Task[None]] = []

    async def load(self) -> None:
        """Read this document's cached outputs at once (one query, not one per call)."""
        if self.source is None:
            return
        async with self.rt.db.connection() as conn:
            self.known = await llm_outputs.outputs_of(conn, self.source)

    async def get(self, key: str) -> dict[str, Any] | None:
        found = self.known.get(key)
        if found is None and self.source is None:
            async with self.rt.db.connection() as conn:
                found = await llm_outputs.output(conn, key)
        if found is not None:
            self.used.add(key)
        return found

    def put(
        self,
        key: str,
        step: str,
        output: BaseModel,
        usage: Usage,
        *,
        position: int | None = None,
        pages_key: str | None = None,
    ) -> None:
        """Write an output in the background: the next call of the document must not wait for the
        database (measured: awaited here, the model sat idle a quarter of the time on a busy
        machine). ``flush`` waits for the writes."""
        self.used.add(key)
        params = {
            "key": key,
            "step": step,
            "model": self.model,
            "source": self.source,
            "position": position,
            "pages_key": pages_key,
            "output": output.model_dump(mode="json"),
            "usage": usage.model_dump(),
        }
        self._writes.append(asyncio.get_running_loop().create_task(self._write(params)))

    async def _write(self, params: dict[str, Any]) -> None:
        async with self.rt.db.connection() as conn:
            await llm_outputs.put_output(conn, **params)

    async def flush(self) -> None:
        """Wait for the background writes; the first failure is raised."""
        writes, self._writes = self._writes, []
        results = await asyncio.gather(*writes, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def forget_unused(rt: Runtime, sources: Sequence[str], keep: Sequence[str]) -> None:
    if not sources:
        return
    async with rt.db.connection() as conn:
        await llm_outputs.forget_unused(conn, sources, keep)
