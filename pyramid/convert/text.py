"""Text helpers shared by every converter: decoding bytes, cleaning markdown, finding a title."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from ..errors import ConversionError

# Legacy single-byte text is far more often Windows-1252 than anything else; charset detection on
# short Western text picks look-alike code pages (cp1250 turns "à" into "ŕ"), so cp1252 wins
# whenever it reads the bytes about as plausibly as the detector's favourite.
_PREFERRED_LEGACY = "cp1252"
_CHAOS_SLACK = 0.02
# Above this share of control characters, "decoded" text is binary data in disguise.
_MAX_CONTROL_SHARE = 0.02
# C0 and C1 control characters, except the whitespace ones text uses.
_CONTROL_CHARS = dict.fromkeys([*(c for c in range(0x20) if chr(c) not in "\t\n\r\f"), *range(0x7F, 0xA0)])


def decode_text(data: bytes, path: str | Path) -> str:
    """Decode file bytes: BOM, then UTF-8, then charset detection; binary garbage is an error."""
    for bom, codec in (
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise ConversionError(
                    path, f"invalid {codec.upper()} text: {exc.reason} at byte {exc.start}"
                ) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # UTF-8 with a few damaged bytes (a truncated download, one bad copy-paste) stays UTF-8: its
    # valid multi-byte characters outnumber the errors, while legacy text has almost none.
    lenient = data.decode("utf-8", errors="replace")
    damaged = lenient.count("\ufffd")
    if len(lenient) - len(lenient.encode("ascii", errors="ignore")) - damaged >= 4 * damaged:
        return lenient.replace("\ufffd", "")
    text = _detect_legacy(data.replace(b"\x00", b""))
    if text is None or _control_share(text) > _MAX_CONTROL_SHARE:
        raise ConversionError(path, "not text: the bytes are neither UTF-8 nor any known text encoding")
    return text


def _detect_legacy(data: bytes) -> str | None:
    from .deps import load

    load()
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return None
    if best.encoding != _PREFERRED_LEGACY:
        western = from_bytes(data, cp_isolation=[_PREFERRED_LEGACY]).best()
        if western is not None and western.chaos <= best.chaos + _CHAOS_SLACK:
            return str(western)
    return str(best)


def _control_share(text: str) -> float:
    if not text:
        return 0.0
    return (len(text) - len(text.translate(_CONTROL_CHARS))) / len(text)


def one_line(text: str, limit: int = 240) -> str:
    """An exception message fit for a one-line reason."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- cleaning ----------------------------------------------------------------------------------

_DROP_CONTROLS = dict.fromkeys([*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_AUTOLINK = re.compile(r"<((?:https?|ftp|file|mailto):[^\s<>]+)>", re.IGNORECASE)
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# HTML elements that may appear raw inside markdown; anything else in angle brackets ("a < b",
# "<name>" placeholders) is left alone.
_HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|big|blockquote|body|br|caption|center|cite|code|dd|del|details|div|dl|dt|em|figure|"
    r"figcaption|font|h[1-6]|head|hr|html|i|img|ins|kbd|li|mark|nav|ol|p|picture|pre|q|s|section|small|"
    r"source|span|strike|strong|sub|summary|sup|table|tbody|td|tfoot|th|thead|tr|tt|u|ul|video)"
    r"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_BLOCK_TAG = re.compile(
    r"</?(?:br|p|div|li|tr|h[1-6]|blockquote|details|summary|table|ul|ol|dl|dd|dt|hr)\b", re.IGNORECASE
)


def clean_markdown(text: str) -> str:
    """Markdown fit for a page: no control bytes, comments or stray HTML tags, no blank-line runs.

    Tags inside code (fenced blocks and inline spans) are content, not markup, and stay.
    """
    # Each pass is guarded by a cheap substring test: most pages need none of them, and the
    # markdown fast path has to stay well above 2,000 pages/s.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\f", "\n\n").translate(_DROP_CONTROLS)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if "<" in text:
        text = _strip_markup(text)
    if " \n" in text or "\t\n" in text:
        text = _TRAILING_SPACE.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def _strip_markup(text: str) -> str:
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence is None and match:
            out.append(_strip_prose("\n".join(prose)))
            prose = []
            fence = match.group(1)[0] * len(match.group(1))
            out.append(line)
        elif fence is not None:
            out.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
        else:
            prose.append(line)
    out.append(_strip_prose("\n".join(prose)))
    return "\n".join(part for part in out)


def _strip_prose(text: str) -> str:
    if "<" not in text:
        return text
    text = _COMMENT.sub("", text)
    pieces: list[str] = []
    last = 0
    for code in _INLINE_CODE.finditer(text):
        pieces.append(_strip_tags(text[last : code.start()]))
        pieces.append(code.group(0))
        last = code.end()
    pieces.append(_strip_tags(text[last:]))
    return "".join(pieces)


def _strip_tags(text: str) -> str:
    text = _AUTOLINK.sub(r"\1", text)
    return _HTML_TAG.sub(lambda m: "\n" if _BLOCK_TAG.match(m.group(0)) else "", text)


# --- titles ------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_MARKDOWN_INLINE = re.compile(r"[*_`]+|\[([^\]]*)\]\([^)]*\)")
MAX_TITLE_CHARS = 200


def first_heading(markdown: str) -> str | None:
    """Text of the first ATX or setext heading outside code fences."""
    fence: str | None = None
    previous = ""
    for line in markdown.split("\n"):
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)[0]
            fence = None if fence == marker else (fence or marker)
            previous = ""
            continue
        if fence:
            continue
        atx = _ATX.match(line)
        if atx:
            return plain_title(atx.group(2))
        if (
            previous.strip()
            and _SETEXT.match(line)
            and not previous.lstrip().startswith(("|", "-", "*", ">"))
        ):
            return plain_title(previous)
        previous = line
    return None


def first_line(text: str) -> str | None:
    for line in text.split("\n"):
        if line.strip():
            return plain_title(line)
    return None


def plain_title(text: str) -> str:
    """A heading without markdown emphasis/link syntax, on one line, of reasonable length."""
    text = _MARKDOWN_INLINE.sub(lambda m: m.group(1) or "", text)
    text = " ".join(text.split()).strip(" #")
    if len(text) > MAX_TITLE_CHARS:
        text = text[:MAX_TITLE_CHARS].rsplit(" ", 1)[0] + "…"
    return text
