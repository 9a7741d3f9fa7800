"""``pyramid sync``: make the pyramid match a set of folders — ingest what is new or changed, and
remove what is gone.

Pruning is deliberately conservative because it runs unattended from cron: a document is removed only
when its file is *known* to be gone (``stat`` says it does not exist) below a root that exists right
now. A root that is missing (an unmounted share), an unreadable folder, a file that is merely excluded
by a glob or became hidden — none of these delete anything.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

from . import store
from .discover import Discovery
from .faults import checkpoint
from .models import FileResult
from .runtime import Runtime

_GONE = (errno.ENOENT, errno.ENOTDIR)


def _gone(path: str) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno in _GONE
    return False


def _existing_roots(paths: Sequence[str | Path]) -> list[Path]:
    roots = []
    for given in paths:
        path = Path(given).expanduser()
        try:
            roots.append(path.resolve(strict=True))
        except (OSError, RuntimeError):
            continue  # missing or a link loop: never prune below a root we cannot see
    return roots


async def stale_documents(
    rt: Runtime, paths: Sequence[str | Path], discovery: Discovery | None
) -> list[tuple[int, str]]:
    """(id, source) of the documents below ``paths`` whose file no longer exists."""
    seen = {str(p) for p in (discovery.files if discovery else [])}
    troubled = [p.path.rstrip("/") + "/" for p in (discovery.problems if discovery else [])]
    found: dict[int, str] = {}
    async with rt.db.connection() as conn:
        for root in _existing_roots(paths):
            for doc_id, source, path in await store.documents_under(conn, str(root)):
                if path in seen or any(path.startswith(t) for t in troubled):
                    continue
                if _gone(path):
                    found[doc_id] = source
    return sorted(found.items(), key=lambda pair: pair[1])


async def prune(
    rt: Runtime, paths: Sequence[str | Path], discovery: Discovery | None, *, dry_run: bool = False
) -> list[FileResult]:
    """Remove (or, on a dry run, list) the documents whose files are gone, with all their items."""

    gone = await stale_documents(rt, paths, discovery)
    if not gone:
        return []
    if not dry_run:
        checkpoint("prune.begin")
        async with rt.db.connection() as conn, conn.transaction():
            await store.delete_documents(conn, [doc_id for doc_id, _ in gone])
        checkpoint("prune.committed")
    return [
        FileResult(source=source, outcome="removed", reason="file no longer exists") for _, source in gone
    ]
