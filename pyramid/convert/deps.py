"""One-time, serialised import of the heavy conversion libraries.

Two worker threads that import MarkItDown for the first time through different entry points
(``markitdown.converters`` and ``markitdown.converters._pdf_converter``) deadlock on its circular
package imports; Python breaks the cycle with ``_DeadlockError`` and the file fails. Every module
here calls ``load()`` before its first heavy import, so the import happens once, in one thread.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_loaded = False


def load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        import charset_normalizer  # noqa: F401
        import defusedxml.ElementTree  # noqa: F401
        import markitdown
        import markitdown.converters  # noqa: F401
        import pdfminer.layout  # noqa: F401
        import pdfplumber  # noqa: F401

        _loaded = True
