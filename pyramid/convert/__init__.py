"""Documents → clean markdown pages, with MarkItDown.

``convert_file`` reads a file once, detects its real format from the content (the extension is
only a hint), and returns one ``ConvertedDocument`` per document in it: one for an ordinary file,
one per item for an RSS/Atom feed. Real pages are kept (PDF pages, PPTX slides, XLSX sheets);
everything else is split at headings under a size cap (see ``split.py``).

Every bad input raises ``ConversionError(path, reason)`` with a one-line reason. The function is
thread-safe: it keeps no shared state, and MarkItDown and its parsers are imported on first use.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..discover import file_kind
from ..errors import ConversionError
from .detect import HEAD_BYTES, SUPPORTED, UNSUPPORTED_KINDS, detect_format
from .split import split_pages
from .text import clean_markdown, decode_text, first_heading, plain_title

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_PAGE_CHARS",
    "SUPPORTED",
    "ConvertedDocument",
    "convert_file",
    "detect_format",
    "file_sha256",
    "split_pages",
]

DEFAULT_MAX_PAGE_CHARS = 4000
DEFAULT_MAX_FILE_BYTES = 50 * 2**20
_CHUNK = 1 << 20
# The extension a user would expect to be honoured, for "not a valid PDF file" messages.
_CLAIMED = {".pdf": "PDF", ".docx": "DOCX", ".pptx": "PPTX", ".xlsx": "XLSX", ".epub": "EPUB"}


@dataclass(frozen=True)
class ConvertedDocument:
    source: str  # unique key: the absolute path; for a feed item "ABS_PATH#<guid, link or title hash>"
    path: str  # absolute path of the file it came from
    title: str
    format: str  # a label from SUPPORTED: "pdf", "docx", "markdown", "rss", …
    pages: list[str]  # clean markdown, one entry per page, none empty
    sha256: str  # of the file's bytes; of the item's markdown for a feed item
    paged: bool  # True for real pages (PDF pages, slides, sheets); False when split at headings
    meta: dict[str, str] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks (no size limit)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def convert_file(
    path: Path | str,
    *,
    max_page_chars: int = DEFAULT_MAX_PAGE_CHARS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> list[ConvertedDocument]:
    """Convert one file; raises ``ConversionError`` naming the file for every input it cannot use."""
    if max_page_chars < 1:
        raise ValueError(f"max_page_chars must be positive, got {max_page_chars}")
    path = Path(path).resolve()
    data = _read(path, max_file_bytes)
    if not data.strip():
        raise ConversionError(path, "empty file" if not data else "file contains only whitespace")
    fmt = detect_format(path, data[:HEAD_BYTES])
    if fmt not in SUPPORTED:
        claimed = _CLAIMED.get(path.suffix.lower())
        what = UNSUPPORTED_KINDS.get(fmt, fmt)
        if claimed:
            raise ConversionError(path, f"not a valid {claimed} file: the content is {what}")
        raise ConversionError(path, f"unsupported file type: {what}")
    name = str(path)
    if fmt in ("rss", "atom"):
        return _feed_documents(data, path, fmt, max_page_chars)
    title, pages, paged = _convert(fmt, data, name, max_page_chars)
    if not pages:
        raise ConversionError(path, "no extractable text")
    return [
        ConvertedDocument(
            source=name,
            path=name,
            title=title or path.stem,
            format=fmt,
            pages=pages,
            sha256=hashlib.sha256(data).hexdigest(),
            paged=paged,
        )
    ]


def _convert(fmt: str, data: bytes, name: str, cap: int) -> tuple[str | None, list[str], bool]:
    """``(title or None, pages, paged)`` for every supported format except feeds."""
    from . import office

    title: str | None
    if fmt == "pdf":
        from .pdf import convert_pdf

        title, pages = convert_pdf(data, name)
        return title, pages, True
    if fmt == "pptx":
        title, pages = office.convert_pptx(data, name)
        return title, pages, True
    if fmt == "xlsx":
        title, pages = office.convert_xlsx(data, name)
        return title, pages, True
    if fmt == "docx":
        title, markdown = office.convert_docx(data, name)
    elif fmt == "epub":
        title, markdown = office.convert_epub(data, name)
    else:
        text = decode_text(data, name)
        if fmt == "html":
            title, markdown = office.convert_html(text, name)
        elif fmt == "csv":
            title, markdown = None, office.convert_csv(text, name)
        elif fmt == "ipynb":
            title, markdown = office.convert_ipynb(text, name)
        else:  # markdown, text, json: already text, no MarkItDown pass needed (it would not change it)
            title, markdown = _plain(text, fmt)
    return title, split_pages(markdown, cap), False


def _plain(text: str, fmt: str) -> tuple[str | None, str]:
    title = None
    if fmt == "markdown" and text.startswith("---"):
        title, text = _front_matter(text)
    markdown = clean_markdown(text)
    if fmt == "json":
        return None, markdown
    return title or first_heading(markdown), markdown


def _front_matter(text: str) -> tuple[str | None, str]:
    """YAML front matter: its ``title:`` becomes the title, its lines stay as plain text."""
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return None, text
    for end in range(1, min(len(lines), 200)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return None, text
    title = None
    for line in lines[1:end]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "title" and value.strip():
            title = plain_title(value.strip().strip("\"'"))
    # The fences go: a closing "---" under a "key: value" line would read as a setext heading.
    return title, "\n".join(lines[1:end] + [""] + lines[end + 1 :])


def _feed_documents(data: bytes, path: Path, fmt: str, cap: int) -> list[ConvertedDocument]:
    from .feed import parse_feed

    name = str(path)
    feed_title, items = parse_feed(data, name)
    documents = []
    for number, item in enumerate(items, 1):
        meta = dict(item.meta)
        if feed_title:
            meta["feed"] = feed_title
        documents.append(
            ConvertedDocument(
                source=f"{name}#{item.key}",
                path=name,
                title=item.title or f"{feed_title or path.stem} item {number}",
                format=fmt,
                pages=split_pages(item.markdown, cap),
                sha256=hashlib.sha256(item.markdown.encode("utf-8")).hexdigest(),
                paged=False,
                meta=meta,
            )
        )
    return documents


def _read(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing directories, FIFOs/devices, missing and oversized files."""
    try:
        # O_NONBLOCK: opening a FIFO without a writer must not hang the worker thread.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as exc:
        raise ConversionError(path, "file not found") from exc
    except PermissionError as exc:
        raise ConversionError(path, "cannot read file: permission denied") from exc
    except OSError as exc:
        raise ConversionError(path, f"cannot open file: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConversionError(path, "is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ConversionError(path, f"not a regular file ({file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise ConversionError(path, f"file is {_size(info.st_size)}, over the {_size(limit)} limit")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        reason = "permission denied" if exc.errno == errno.EACCES else exc.strerror or str(exc)
        raise ConversionError(path, f"cannot read file: {reason}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:  # the file grew while we looked at it
        raise ConversionError(path, f"file is over the {_size(limit)} limit")
    return data


def _size(count: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{count} bytes"
