"""Markdown-aware sentence segmentation for the extractive distiller.

A page becomes a list of candidate insights: prose is split into sentences, every list item and
every table row becomes one sentence, headings become context (never insights), code blocks and
boilerplate are dropped. Each candidate keeps the span of the page text it came from, so every
insight can be traced back to its page.

Sentences are made to stand alone, because an insight is retrieved without its page: a sentence
that opens with "He"/"She" about the document's subject gets the subject's name, and a list item or
table row that does not name the subject gets the heading context ("Alice Smith, Skills: Python.").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["prose", "list", "table"]

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST = re.compile(r"^(\s*)([-*+]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?(.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_QUOTE = re.compile(r"^\s*>\s?")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)

# Inline markdown to plain text.
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<(https?://[^>]+)>")
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
_CODE = re.compile(r"`+([^`]*)`+")
_SPACES = re.compile(r"\s+")

# A sentence ends at . ! ? (with closing quotes/brackets) followed by space and a capital, digit or
# opening quote; the word before the period must not be a known abbreviation or an initial.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=[\"'“‘(\[*_]*[A-Z0-9À-Ý])")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e inc ltd co corp no nos fig figs vol vols pp p cf approx "
    "dept est jan feb mar apr jun jul aug sep sept oct nov dec gen col lt sgt capt rev hon al ca op ed eds "
    "u.s u.k a.m p.m ph.d".split()
)
_WORD = re.compile(r"[A-Za-zÀ-ÿ0-9][A-Za-zÀ-ÿ0-9'’\-]*")

_BOILERPLATE = re.compile(
    r"^(page \d+( of \d+)?|\d+ / \d+|copyright\b|©|all rights reserved|table of contents|contents$|"
    r"click here|subscribe\b|share this|cookie|privacy policy|terms of (use|service)|skip to (main )?content|"
    r"back to top|read more$|advertisement$)",
    re.IGNORECASE,
)

_PERSON_PRONOUN = re.compile(r"^(He|She|His|Her)\b(?!['’])")
_NAME = re.compile(r"^[A-ZÀ-Ý][\w'’.\-]*( [A-ZÀ-Ý][\w'’.\-]*){0,3}$")

MIN_PROSE_WORDS = 3
MIN_ITEM_WORDS = 2
MAX_WORDS = 60


@dataclass(frozen=True)
class Candidate:
    """One sentence of a page, ready to become an insight."""

    text: str  # the standalone sentence
    page: int
    start: int  # span of the page text it came from
    end: int
    kind: Kind
    section: str  # the heading it sits under ("" at the top)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def normalize(text: str) -> str:
    """Lower-case words only: what two sentences must share to be the same sentence."""
    return " ".join(w.lower() for w in words(text))


def plain(text: str) -> str:
    """Inline markdown (links, emphasis, code, tags) to plain text."""
    text = _HTML_COMMENT.sub(" ", text)
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _FOOTNOTE.sub("", text)
    text = _TAG.sub(" ", text)
    for _ in range(2):  # nested emphasis (**_x_**)
        text = _EMPHASIS.sub(r"\2", text)
    text = _CODE.sub(r"\1", text)
    text = text.replace("\\|", "|").replace("\\", "")
    return _SPACES.sub(" ", text).strip()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of a prose block."""
    spans = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        before = text[start : match.start()].rsplit(None, 1)
        last = before[-1].lower().rstrip(".") if before else ""
        last = last.lstrip("(\"'“‘")
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        end = match.start() + len(match.group(0).rstrip())
        spans.append((start, end))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [plain(cell) for cell in re.split(r"(?<!\\)\|", body)]


def table_sentence(header: list[str], row: list[str]) -> str:
    """A table row as a plain sentence: "For Name Alice, Age is 30 and City is Paris." A column
    without a header contributes its value alone."""
    pairs = [(h.strip(), v.strip()) for h, v in zip(header + [""] * len(row), row, strict=False) if v.strip()]
    if not pairs:
        return ""
    if len(pairs) == 1:
        head, value = pairs[0]
        return f"{head} is {value}." if head else f"{value}."
    (head0, label), rest = pairs[0], pairs[1:]
    subject = f"For {head0} {label}" if head0 else f"For {label}"
    parts = [f"{h} is {v}" if h else v for h, v in rest]
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{subject}, {body}."


class _Page:
    """Walks one page's lines and collects candidates."""

    def __init__(self, text: str, number: int, subject: str) -> None:
        self.text = text
        self.number = number
        self.subject = subject
        self.subject_words = {w.lower() for w in words(subject) if len(w) > 2}
        self.headings: list[tuple[int, str]] = []
        self.out: list[Candidate] = []

    @property
    def section(self) -> str:
        # The innermost heading that is not the subject itself ("# Alice Smith / ## Family" → Family).
        for _, title in reversed(self.headings):
            if normalize(title) != normalize(self.subject):
                return title
        return ""

    def run(self) -> list[Candidate]:
        lines = self.text.splitlines(keepends=True)
        offsets = []
        pos = 0
        for line in lines:
            offsets.append(pos)
            pos += len(line)
        i = 0
        in_fence = False
        paragraph: list[int] = []
        while i < len(lines):
            line = lines[i]
            if _FENCE.match(line):
                self._flush(paragraph, lines, offsets)
                paragraph = []
                in_fence = not in_fence
                i += 1
                continue
            if in_fence:
                i += 1
                continue
            stripped = _QUOTE.sub("", line).rstrip("\n")
            heading = _HEADING.match(stripped)
            if not stripped.strip() or _RULE.match(stripped) or heading:
                self._flush(paragraph, lines, offsets)
                paragraph = []
                if heading:
                    level = len(heading.group(1))
                    self.headings = [(lv, t) for lv, t in self.headings if lv < level]
                    self.headings.append((level, plain(heading.group(2))))
                i += 1
                continue
            if stripped.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1]):
                self._flush(paragraph, lines, offsets)
                paragraph = []
                i = self._table(lines, offsets, i)
                continue
            item = _LIST.match(stripped)
            if item:
                self._flush(paragraph, lines, offsets)
                paragraph = []
                i = self._list_item(lines, offsets, i, item)
                continue
            paragraph.append(i)
            i += 1
        self._flush(paragraph, lines, offsets)
        return self.out

    # -- blocks --------------------------------------------------------------------------------
    def _flush(self, paragraph: list[int], lines: list[str], offsets: list[int]) -> None:
        if not paragraph:
            return
        start = offsets[paragraph[0]]
        end = offsets[paragraph[-1]] + len(lines[paragraph[-1]])
        block = self.text[start:end]
        for s, e in split_sentences(block):
            self._add(plain(_QUOTE.sub("", block[s:e])), start + s, start + e, "prose")

    def _table(self, lines: list[str], offsets: list[int], i: int) -> int:
        header = _cells(lines[i])
        i += 2
        while i < len(lines) and (lines[i].strip().startswith("|") or lines[i].count("|") >= 2):
            row = _cells(lines[i])
            sentence = table_sentence(header, row)
            if sentence:
                self._add(sentence, offsets[i], offsets[i] + len(lines[i].rstrip("\n")), "table")
            i += 1
        return i

    def _list_item(self, lines: list[str], offsets: list[int], i: int, item: re.Match[str]) -> int:
        indent = len(item.group(1))
        start = offsets[i]
        body = [item.group(3)]
        i += 1
        # Continuation lines: indented deeper than the marker and not another item or block.
        while i < len(lines):
            nxt = lines[i].rstrip("\n")
            if not nxt.strip() or _LIST.match(nxt) or _HEADING.match(nxt) or nxt.lstrip().startswith("|"):
                break
            if len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt.strip())
            i += 1
        end = offsets[i - 1] + len(lines[i - 1].rstrip("\n"))
        text = " ".join(body)
        for s, e in split_sentences(text):
            self._add(plain(text[s:e]), start, end, "list")
        return i

    # -- one sentence --------------------------------------------------------------------------
    def _add(self, text: str, start: int, end: int, kind: Kind) -> None:
        text = text.strip(" -–—•*:;,")
        count = len(words(text))
        if (kind == "prose" and count < MIN_PROSE_WORDS) or count < 1 or _BOILERPLATE.match(text):
            return
        letters = sum(ch.isalpha() for ch in text)
        if letters < 0.5 * len(text.replace(" ", "")):
            return  # numbers, symbols, page furniture
        if count > MAX_WORDS:
            pieces = [p.strip() for p in text.split("; ") if p.strip()]
            if len(pieces) > 1:
                for piece in pieces:
                    self._add(piece if piece.endswith(".") else piece + ".", start, end, kind)
                return
        text = self._standalone(text, kind)
        if len(words(text)) < MIN_ITEM_WORDS:
            return
        if text[-1] not in ".!?":
            text += "."
        self.out.append(Candidate(text, self.number, start, end, kind, self.section))

    def _standalone(self, text: str, kind: Kind) -> str:
        text = text[0].upper() + text[1:] if text[0].islower() and kind != "prose" else text
        if self.subject and _NAME.match(self.subject):
            match = _PERSON_PRONOUN.match(text)
            if match:
                pronoun = match.group(1)
                # "He"/"She" are the subject; "His"/"Her" before a noun are possessive. "Her" as an
                # object never opens a sentence, so reading it as possessive is safe.
                name = self.subject if pronoun in ("He", "She") else f"{self.subject}'s"
                return name + text[len(pronoun) :]
        if (
            kind != "prose"
            and self.subject_words
            and not (self.subject_words & {w.lower() for w in words(text)})
        ):
            context = ", ".join(part for part in (self.subject, self.section) if part)
            if context:
                return f"{context}: {text}"
        return text


def segment(pages: list[str], *, subject: str) -> list[Candidate]:
    """Every candidate sentence of a document, in reading order. ``subject`` is what the document is
    about (its title); it resolves "He"/"She" and gives list items and table rows their context."""
    found: list[Candidate] = []
    for number, text in enumerate(pages, start=1):
        found.extend(_Page(text, number, subject.strip()).run())
    return found


def drop_repeated(candidates: list[Candidate], page_count: int) -> list[Candidate]:
    """Drop running headers and footers: a sentence that recurs on at least three pages and on at
    least a third of them is page furniture, not content."""
    if page_count < 3:
        return candidates
    pages_of: dict[str, set[int]] = {}
    for cand in candidates:
        pages_of.setdefault(normalize(cand.text), set()).add(cand.page)
    furniture = {key for key, pages in pages_of.items() if len(pages) >= 3 and len(pages) >= page_count / 3}
    return [cand for cand in candidates if normalize(cand.text) not in furniture]
