"""Which format a file really is: magic bytes and markup first, the extension only as a hint.

A ``.txt`` that holds an HTML page or an RSS feed is converted as HTML or as a feed; a ``.pdf``
that is really a PNG is refused as an image, not as a broken PDF. Only the standard library is
imported here.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

#: How many leading bytes ``detect_format`` needs to see.
HEAD_BYTES = 8192

#: Formats ``convert_file`` turns into pages; every other label names an unsupported kind of file.
SUPPORTED = frozenset(
    {"pdf", "docx", "pptx", "xlsx", "epub", "html", "rss", "atom", "markdown", "text", "csv", "json", "ipynb"}
)

# Labels for files we recognise but cannot convert; the words are used in the error message.
UNSUPPORTED_KINDS: dict[str, str] = {
    "image": "an image (no text to extract; OCR is not supported)",
    "media": "an audio or video file",
    "executable": "an executable program",
    "archive": "a compressed archive",
    "zip": "a zip archive that is not a DOCX, PPTX, XLSX or EPUB document",
    "ole": "a legacy binary Office file (.doc/.xls/.ppt); save it as .docx/.xlsx/.pptx",
    "sqlite": "an SQLite database",
    "xml": "an XML document that is not XHTML or an RSS/Atom feed",
    "binary": "binary data, not a document or text",
}

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"II*\x00", "image"),
    (b"MM\x00*", "image"),
    (b"\x00\x00\x01\x00", "image"),  # .ico
    (b"\x7fELF", "executable"),
    (b"MZ", "executable"),
    (b"\xfe\xed\xfa\xce", "executable"),
    (b"\xfe\xed\xfa\xcf", "executable"),
    (b"\xce\xfa\xed\xfe", "executable"),
    (b"\xcf\xfa\xed\xfe", "executable"),
    (b"\xca\xfe\xba\xbe", "executable"),
    (b"\x00asm", "executable"),
    (b"\x1f\x8b", "archive"),
    (b"BZh", "archive"),
    (b"\xfd7zXZ\x00", "archive"),
    (b"7z\xbc\xaf\x27\x1c", "archive"),
    (b"Rar!\x1a\x07", "archive"),
    (b"\x28\xb5\x2f\xfd", "archive"),  # zstd
    (b"ID3", "media"),
    (b"OggS", "media"),
    (b"fLaC", "media"),
    (b"\x1aE\xdf\xa3", "media"),  # matroska / webm
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"SQLite format 3\x00", "sqlite"),
]

_TEXT_EXTENSIONS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".mkd": "markdown",
    ".mdx": "markdown",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".geojson": "json",
    ".ipynb": "ipynb",
    ".htm": "html",
    ".html": "html",
    ".xhtml": "html",
    ".rss": "rss",
    ".atom": "atom",
}

# Everything but the C0 control bytes text never holds (NUL is counted separately).
_TEXT_BYTES = bytes([0, 9, 10, 12, 13, 27, *range(32, 256)])
_PLAIN_EXTENSIONS = frozenset({".txt", ".text", ".log"})
_LEADING_JUNK = re.compile(
    r"^(?:\s+|<\?xml[^>]*\?>|<!--.*?-->|<!doctype(?!\s+html)[^>]*>)*", re.DOTALL | re.IGNORECASE
)
_HTML_FRAGMENT = re.compile(
    r"<(?:p|div|span|h[1-6]|table|ul|ol|dl|section|article|main|header|nav|a|b|i|em|strong|br|hr|img)[\s/>]"
)
_ELEMENT = re.compile(r"<[a-z_][\w.:-]*[\s/>]")
_ATOM_NS = "http://www.w3.org/2005/atom"
_RSS1_NS = "http://purl.org/rss/1.0/"


def detect_format(path: Path, head: bytes) -> str:
    """Label the file at ``path`` whose first bytes are ``head`` (``HEAD_BYTES`` of them suffice).

    Returns a label from ``SUPPORTED``, or one of ``UNSUPPORTED_KINDS``. Zip containers are told
    apart by their member names, read from the file's central directory.
    """
    ext = path.suffix.lower()
    # Readers accept junk before the header (within the first KB), but a text file may also
    # mention "%PDF-": away from the start, only a .pdf name makes it a PDF.
    if head.lstrip().startswith(b"%PDF-") or (ext == ".pdf" and b"%PDF-" in head[:1024]):
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_format(path)
    if head[8:12] in (b"WEBP", b"AVIF") or head[4:12] in (b"ftypavif", b"ftypheic"):
        return "image"
    if head[4:8] == b"ftyp" or (head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI ")):
        return "media"
    for magic, label in _MAGIC:
        # "MZ", "BZh", "ID3"… are also how a sentence may start: printable magic needs binary data.
        if head.startswith(magic) and (not magic.isalnum() or _looks_binary(head)):
            return label
    if _looks_binary(head):
        return "binary"
    return _text_format(ext, head)


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names and archive.read("mimetype").strip() == b"application/epub+zip":
                return "epub"
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError):
        # A zip header without a readable directory: a truncated or damaged file. Name it by its
        # extension so the converter reports "damaged DOCX" rather than "unsupported zip".
        return {".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".epub": "epub"}.get(
            path.suffix.lower(), "zip"
        )
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return "zip"


def _looks_binary(head: bytes) -> bool:
    """NUL bytes (outside UTF-16/32 text) or many control bytes mean binary data."""
    if not head or head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):  # UTF-16/32 BOMs
        return False
    nuls = head.count(0)
    # A stray NUL in a text file is cleaned away later; binary formats are full of them.
    if nuls > max(2, len(head) // 100):
        return True
    controls = len(head.translate(None, _TEXT_BYTES))
    return controls > len(head) // 50


def _text_format(ext: str, head: bytes) -> str:
    # Markup is ASCII, so a lossy single-byte decode is enough to sniff it; UTF-16 needs its own.
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        sample = head.decode("utf-16", errors="ignore")
    else:
        sample = head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")
    start = _LEADING_JUNK.sub("", sample[:4096], count=1).lower()
    if start.startswith("<rss"):
        return "rss"
    if start.startswith("<feed") and (_ATOM_NS in start[:2048] or "xmlns" not in start[:2048]):
        return "atom"
    if start.startswith("<rdf:rdf") and _RSS1_NS in start:
        return "rss"
    if start.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "html"
    if start.startswith("<svg"):
        return "image"
    if sample.lstrip().startswith("<?xml"):
        return "xml"
    hinted = _TEXT_EXTENSIONS.get(ext)
    if hinted:
        return hinted
    if ext in _PLAIN_EXTENSIONS:
        # Notes that open with "<b>Note:</b>" are still notes: read as HTML, their line breaks
        # would be lost. Only whole-document markers above override a .txt.
        return "text"
    if _HTML_FRAGMENT.match(start):
        return "html"
    if ext == ".xml" or _ELEMENT.match(start):
        return "xml"
    return "text"
