"""Crash points for the crash-safety tests (``tests/test_crash.py``).

The tests kill ``pyramid sync`` at many different places — between documents, inside a document's
transaction, between storing documents and refreshing the recollections — and check that the next
run ends in exactly the state of an uninterrupted one. Killing by timer would hit the same few
places again and again; named points hit each place on purpose.

``PYRAMID_TEST_CRASH_AT=N`` makes the process SIGKILL itself (no cleanup, no rollback from Python:
what a power cut or the OOM killer does) at the N-th point it reaches; ``PYRAMID_TEST_CRASH_LOG=FILE``
appends the name of every point reached; ``PYRAMID_TEST_CRASH_AT=NAME`` kills at the first point of
that name (the queue's crash test kills one worker of several at a chosen stage). With neither set —
always, outside those tests — a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading

_lock = threading.Lock()
_reached = 0


def checkpoint(name: str) -> None:
    target = os.environ.get("PYRAMID_TEST_CRASH_AT")
    log = os.environ.get("PYRAMID_TEST_CRASH_LOG")
    if not target and not log:
        return
    global _reached
    with _lock:
        _reached += 1
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{_reached} {name}\n")
        if target and (_reached == int(target) if target.isdigit() else name == target):
            os.kill(os.getpid(), signal.SIGKILL)
