"""What every library operation needs: settings, the database, the embedder, and a way to report
progress. One Runtime lives on the event loop that ``Pyramid`` drives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .config import Settings
from .embed import Embedder
from .models import FileResult
from .store.database import Database

EventKind = Literal["start", "file", "done", "result", "message", "stage", "step"]


@dataclass
class ProgressEvent:
    """A progress report from a long operation.

    ``start``: ``total`` files are about to be processed; ``file``: work on ``path`` began;
    ``done``: ``path`` is finished (``files_done`` so far); ``result``: one document (or file)
    finished with ``result``; ``stage``: the operation moved on to ``message`` (e.g.
    "recollections", "searching"); ``step``: within the document or file ``path``, ``files_done``
    of ``total`` units of the step ``message`` are done ("embedding pages" 40 of 90; ``total`` 0:
    a step without a count, "converting"), so a long file does not sit at 0 files for minutes;
    ``message``: something to tell the user.
    """

    kind: EventKind
    total: int = 0
    path: str | None = None
    result: FileResult | None = None
    message: str | None = None
    files_done: int = 0


ProgressCallback = Callable[[ProgressEvent], None]


def _ignore(_event: ProgressEvent) -> None:
    return None


@dataclass
class Runtime:
    settings: Settings
    db: Database
    embedder: Embedder
    progress: ProgressCallback = field(default=_ignore)

    def emit(self, event: ProgressEvent) -> None:
        self.progress(event)

    def say(self, message: str) -> None:
        self.progress(ProgressEvent("message", message=message))

    def step(self, path: str, what: str, done: int = 0, total: int = 0) -> None:
        """Progress within one document or file (a ``step`` event)."""
        self.progress(ProgressEvent("step", path=path, message=what, files_done=done, total=total))

    def stage(self, what: str) -> None:
        self.progress(ProgressEvent("stage", message=what))
