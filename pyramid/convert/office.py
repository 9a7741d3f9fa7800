"""Office, e-book and web formats through MarkItDown's converters.

Each call builds its own converter (they are cheap, ~50 µs, and some keep per-call state such as
``RssConverter._kwargs``), so conversions in a thread pool never share one. The converters are
called directly rather than through ``MarkItDown().convert``: the format is already known, and
MarkItDown's dispatcher would run Magika (an ONNX model) on every file to guess it again.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from typing import Any

from ..errors import ConversionError
from .deps import load
from .text import clean_markdown, first_heading, one_line, plain_title

_SLIDE_MARKER = re.compile(r"<!-- Slide number: (\d+) -->")
_EMPTY_TABLE_HEADER = re.compile(r"(?m)^\|(?:[ \t]*\|)+\n(\|(?:[ \t]*:?-+:?[ \t]*\|)+)\n(\|.*\|)$")
_CORE_TITLE = re.compile(rb"<dc:title>([^<]*)</dc:title>")


# One office conversion at a time per process. Two at once on the conversion threads (an XLSX beside
# a DOCX or PPTX) made openpyxl fail with KeyError: 'rId1' on a sound file now and then, and a run
# of the suite once aborted in native code there; these libraries (openpyxl, python-docx,
# python-pptx, mammoth over lxml) are not documented as thread-safe. They take milliseconds to
# tens of milliseconds a file, so PDFs and text formats still convert in parallel beside them.
_OFFICE_LOCK = threading.Lock()


def _converters() -> Any:
    load()
    import markitdown.converters

    return markitdown.converters


def _run(converter: Any, data: bytes, extension: str, path: str, what: str, **stream: Any) -> Any:
    from markitdown import StreamInfo

    try:
        with _OFFICE_LOCK:
            return converter.convert(io.BytesIO(data), StreamInfo(extension=extension, **stream))
    except Exception as exc:
        # python-docx/mammoth/openpyxl/pandas/lxml raise anything from KeyError to XMLSyntaxError on
        # a damaged file; the type and message are kept so the cause stays visible.
        raise ConversionError(
            path, f"damaged or unreadable {what}: {one_line(f'{type(exc).__name__}: {exc}')}"
        ) from exc


def core_title(data: bytes) -> str | None:
    """``dc:title`` from an OOXML package's docProps/core.xml, when the author set one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            core = archive.read("docProps/core.xml")
    except (KeyError, zipfile.BadZipFile, OSError):
        return None
    match = _CORE_TITLE.search(core)
    if not match:
        return None
    from html import unescape

    return plain_title(unescape(match.group(1).decode("utf-8", "replace"))) or None


def convert_docx(data: bytes, path: str) -> tuple[str | None, str]:
    markdown = clean_markdown(_run(_converters().DocxConverter(), data, ".docx", path, "DOCX file").markdown)
    # Word tables have no header cells, so the markdown table gets an empty header row above
    # the real first row; that row is promoted to be the header.
    markdown = _EMPTY_TABLE_HEADER.sub(r"\2\n\1", markdown)
    return first_heading(markdown) or core_title(data), markdown


def convert_pptx(data: bytes, path: str) -> tuple[str | None, list[str]]:
    """One page per slide, in slide order; a slide without text becomes a short stand-in."""
    markdown = _run(_converters().PptxConverter(), data, ".pptx", path, "PPTX file").markdown
    pieces = _SLIDE_MARKER.split(markdown)
    # split() gives [before, number, text, number, text, ...]
    slides = [clean_markdown(pieces[i + 1]) for i in range(1, len(pieces) - 1, 2)]
    if not slides:
        raise ConversionError(path, "presentation has no slides")
    if not any(slides):
        raise ConversionError(path, f"no extractable text in {len(slides)} slide(s)")
    title = first_heading(slides[0]) or core_title(data)
    pages = [slide or f"*(slide {number} has no text)*" for number, slide in enumerate(slides, 1)]
    return title, pages


def convert_xlsx(data: bytes, path: str) -> tuple[str | None, list[str]]:
    """One page per worksheet, headed by the sheet's name."""
    markdown = _run(_converters().XlsxConverter(), data, ".xlsx", path, "XLSX file").markdown
    # MarkItDown writes each sheet as "## <name>" + table; cell text cannot start a line with
    # "## " (it sits inside "| … |" rows), so these lines are exactly the sheet boundaries.
    sheets = re.split(r"(?m)^(?=## )", markdown)
    pages = [clean_markdown(sheet) for sheet in sheets if sheet.strip()]
    if not pages:
        raise ConversionError(path, "workbook has no sheets")
    if all(page.count("\n") == 0 for page in pages):
        raise ConversionError(path, f"no extractable text: all {len(pages)} sheet(s) are empty")
    return core_title(data), pages


def convert_epub(data: bytes, path: str) -> tuple[str | None, str]:
    result = _run(_converters().EpubConverter(), data, ".epub", path, "EPUB file")
    markdown = clean_markdown(result.markdown)
    title = plain_title(result.title) if result.title else None
    return title or first_heading(markdown), markdown


def convert_csv(text: str, path: str) -> str:
    data = text.encode("utf-8")
    return clean_markdown(
        _run(_converters().CsvConverter(), data, ".csv", path, "CSV file", charset="utf-8").markdown
    )


def convert_ipynb(text: str, path: str) -> tuple[str | None, str]:
    data = text.encode("utf-8")
    result = _run(_converters().IpynbConverter(), data, ".ipynb", path, "Jupyter notebook", charset="utf-8")
    markdown = clean_markdown(result.markdown)
    return (plain_title(result.title) if result.title else None) or first_heading(markdown), markdown


def html_to_markdown(html: str) -> tuple[str | None, str]:
    """``(<title> text, markdown)`` of an HTML document or fragment (scripts and styles dropped)."""
    result = _converters().HtmlConverter().convert_string(html)
    title = plain_title(result.title) if result.title else None
    return title or None, clean_markdown(result.markdown)


def convert_html(text: str, path: str) -> tuple[str | None, str]:
    try:
        title, markdown = html_to_markdown(text)
    except (ValueError, LookupError, AssertionError, RecursionError) as exc:
        # html.parser is lenient; what it still rejects (bad character references, unknown
        # encodings, nesting too deep for markdownify) is a property of the page.
        raise ConversionError(path, f"unreadable HTML: {one_line(f'{type(exc).__name__}: {exc}')}") from exc
    return title or first_heading(markdown), markdown
