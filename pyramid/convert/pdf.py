"""PDF → one markdown page per PDF page.

MarkItDown's own PDF converter returns the whole document as one string, so page boundaries are
lost. Here the same engines run page by page: pdfplumber opens the file once with pdfminer layout
analysis; a page whose words line up in columns goes through MarkItDown's form/table extractor
(markdown tables), every other page is rendered from the pdfminer layout exactly as
``pdfminer.high_level.extract_text`` (MarkItDown's prose path) would render it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

from ..errors import ConversionError
from .deps import load
from .text import clean_markdown, first_line, one_line, plain_title

# Acrobat accepts a file whose %%EOF marker lies within its last kilobyte; a little slack for
# producers that append padding.
_EOF_WINDOW = 2048
# Column detection (MarkItDown's form extractor) costs ~3x the layout analysis, so it only runs on
# pages where some line holds 3+ runs of text at least this far apart (its own column rule).
_COLUMN_GAP = 50.0
_WORD_GAP = 3.0
_CID = re.compile(r"\(cid:\d+\)")
_SPACE_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_FALSE_PARAGRAPH = re.compile(r"(?<=[^\s.!?:;])[ \t]*\n(?:[ \t]*\n)+[ \t]*(?=[a-z0-9(])")


def blank_page(number: int) -> str:
    """Stand-in for a page without text, so page N stays page N for citations."""
    return f"*(page {number} has no extractable text)*"


def convert_pdf(data: bytes, path: str) -> tuple[str, list[str]]:
    """``(title, pages)`` of a PDF given as bytes; ``ConversionError`` for unreadable files."""
    load()
    import pdfplumber

    truncated = b"%%EOF" not in data[-_EOF_WINDOW:]
    form_extractor = _markitdown_form_extractor()
    pages: list[str] = []
    try:
        # No laparams: pages are read raw, and the layout analysis runs only where it is used.
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            title = _metadata_title(pdf.metadata)
            for page in pdf.pages:
                pages.append(_page_markdown(page, form_extractor))
                page.close()  # frees pdfplumber's per-page caches: memory stays flat on long files
    except Exception as exc:
        # pdfminer raises bare KeyError/ValueError/TypeError/AssertionError on malformed object
        # streams, and pdfplumber wraps its errors in PdfminerException: every failure here is a
        # property of this file, so it becomes a reason naming the file, with the cause chained.
        raise _reason(path, exc, truncated=truncated) from exc
    if not pages:
        raise ConversionError(path, "PDF has no pages")
    if not any(pages):
        raise ConversionError(
            path, f"no extractable text in {len(pages)} page(s) (scanned PDF? OCR is not supported)"
        )
    title = title or first_line(next(page for page in pages if page)) or ""
    return title, [page or blank_page(number) for number, page in enumerate(pages, 1)]


def _reason(path: str, exc: Exception, *, truncated: bool) -> ConversionError:
    from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
    from pdfplumber.utils.exceptions import PdfminerException

    cause: BaseException = exc
    if isinstance(exc, PdfminerException) and exc.args and isinstance(exc.args[0], BaseException):
        cause = exc.args[0]
    if isinstance(cause, (PDFPasswordIncorrect, PDFEncryptionError)):
        return ConversionError(path, "encrypted PDF: it is password-protected and cannot be read")
    detail = one_line(f"{type(cause).__name__}: {cause}".rstrip(": "))
    if truncated:
        return ConversionError(path, f"truncated PDF: the file ends before its %%EOF marker ({detail})")
    return ConversionError(path, f"damaged PDF: {detail}")


def _page_markdown(page: Any, form_extractor: Callable[[Any], str | None] | None) -> str:
    from pdfminer.layout import LAParams, LTContainer, LTText, LTTextBox

    layout = page.layout  # characters as drawn, not yet grouped into lines and boxes
    if form_extractor is not None and _has_columns(layout):
        table_text = form_extractor(page)
        if table_text is not None:
            return clean_markdown(table_text)
    # The analysis pdfminer's extract_text (MarkItDown's prose path) runs with its defaults. It is
    # the costliest step on a dense table page, which is why table pages skip it.
    layout.analyze(LAParams())
    parts: list[str] = []

    def render(item: Any) -> None:
        # pdfminer's TextConverter.receive_layout, minus its output stream.
        if isinstance(item, LTContainer):
            for child in item:
                render(child)
        elif isinstance(item, LTText):
            parts.append(item.get_text())
        if isinstance(item, LTTextBox):
            parts.append("\n")

    render(layout)
    # "(cid:42)" is pdfminer's stand-in for a glyph with no Unicode mapping: noise, not text.
    text = _CID.sub("", "".join(parts))
    return clean_markdown(_mend_prose(text))


def _mend_prose(text: str) -> str:
    """Undo two layout artefacts that break sentences apart.

    Justified lines come out with runs of spaces between words, and loosely spaced lines each
    become their own text box, so a sentence is cut by a paragraph break ("The P3\n\ndrives
    between…"). A box break is turned back into a line break when the sentence clearly goes on:
    the line before has no closing punctuation and the next one starts in lower case or a digit.
    """
    text = _SPACE_RUNS.sub(" ", text)
    return _FALSE_PARAGRAPH.sub("\n", text)


def _has_columns(layout: Any) -> bool:
    """Whether any text row has 3+ runs starting over ``_COLUMN_GAP`` apart (cheap pre-check).

    The same rule as MarkItDown's form extractor (words split at gaps over 3 pt, rows 5 pt high),
    computed on pdfminer's raw characters instead of pdfplumber's per-character dictionaries.
    """
    from pdfminer.layout import LTChar, LTContainer

    rows: dict[int, list[tuple[float, float]]] = {}

    def visit(item: Any) -> None:
        for child in item:
            if isinstance(child, LTChar):  # spaces included: they join words (keep_blank_chars)
                rows.setdefault(round(child.y1 / 5), []).append((child.x0, child.x1))
            elif isinstance(child, LTContainer):
                visit(child)

    visit(layout)
    for chars in rows.values():
        if len(chars) < 3:
            continue
        chars.sort()
        groups, group_start, previous_x1 = 0, None, None
        for x0, x1 in chars:
            starts_word = previous_x1 is None or x0 - previous_x1 > _WORD_GAP
            if starts_word and (group_start is None or x0 - group_start > _COLUMN_GAP):
                groups += 1
                group_start = x0
            previous_x1 = max(x1, previous_x1 or x1)
        if groups >= 3:
            return True
    return False


def _markitdown_form_extractor() -> Callable[[Any], str | None] | None:
    try:
        from markitdown.converters._pdf_converter import _extract_form_content_from_words
    except ImportError:
        # Older MarkItDown releases have no table extractor: pages keep their pdfminer text.
        return None
    return _extract_form_content_from_words


def _metadata_title(metadata: dict[str, Any]) -> str | None:
    raw = metadata.get("Title")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-16" if raw.startswith((b"\xfe\xff", b"\xff\xfe")) else "latin-1", "replace")
    if not isinstance(raw, str):
        return None
    title = plain_title(raw.replace("\x00", ""))
    # Word processors fill the field with junk like "untitled" or "Microsoft Word - a.doc".
    if (
        not title
        or title.lower() in {"untitled", "title", "document"}
        or title.startswith("Microsoft Word - ")
    ):
        return None
    return title
