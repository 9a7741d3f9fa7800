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

from ...text import Block, blocks, list_items, sentence_spans
from ...text.markdown import LIST_ITEM, TABLE_SEPARATOR, unquote

Kind = Literal["prose", "list", "table"]

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

# A word: a run of Latin letters and digits, or one CJK character (Chinese and Japanese put no spaces
# between words, so "東京は晴れ" counts five).
_WORD = re.compile(
    r"[A-Za-zÀ-ÿ0-9][A-Za-zÀ-ÿ0-9'’\-]*|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
)

_BOILERPLATE = re.compile(
    r"^(page \d+( of \d+)?|\d+ / \d+|copyright\b|©|all rights reserved|table of contents|contents$|"
    r"click here|subscribe\b|share this|cookie|privacy policy|terms of (use|service)|skip to (main )?content|"
    r"back to top|read more$|advertisement$)",
    re.IGNORECASE,
)

_PERSON_PRONOUN = re.compile(r"^(He|She|His|Her)\b(?!['’])")
# A sentence that opens with one of these leans on the sentence before ("It went on sale in 2030.").
_LEANING = re.compile(r"^(It|Its|They|Their|Them|This|These|Those|He|She|His|Her)\b(?!['’])")
# A first sentence that is a bare noun phrase ("A family orchard of 60 hectares."): its subject is
# the heading above it.
_FRAGMENT = re.compile(r"^(A|An)\s")
_END_PUNCTUATION = ".!?;:,…"
HEADING_LINE_WORDS = 8  # an unpunctuated line this short, alone or atop a paragraph, is a heading
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
    context: tuple[str, ...] = ()  # what was put before the sentence so it stands alone ("Otters, Food")
    block: int = 0  # where its paragraph or list item starts on the page

    @property
    def body(self) -> str:
        """The sentence without its context."""
        if not self.context:
            return self.text
        return self.text[len(", ".join(self.context)) + 2 :]


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
    """Spans of the sentences of a prose block (the shared splitter, ``pyramid.text``)."""
    return sentence_spans(text)


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [plain(cell) for cell in re.split(r"(?<!\\)\|", body)]


def _has_header(block: Block) -> bool:
    lines = block.text.split("\n")
    return len(lines) > 1 and bool(TABLE_SEPARATOR.match(lines[1]))


def _heading_line(line: str, rest: str) -> bool:
    """A line without markup that reads as a heading: short, capitalised, without punctuation, alone or
    followed by a line that starts a new sentence (a wrapped sentence goes on in lower case)."""
    line = line.strip()
    if (
        not line
        or not line[0].isupper()
        or line[-1] in _END_PUNCTUATION
        or "," in line
        or LIST_ITEM.match(line)
    ):
        return False
    if len(words(line)) > HEADING_LINE_WORDS or len(line) > 60:
        return False
    following = rest.lstrip()[:1]
    return not following or following.isupper()


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
        self.block = 0  # start of the block (paragraph, list item) being read

    @property
    def section(self) -> str:
        # The innermost heading that is not the subject itself ("# Alice Smith / ## Family" → Family).
        for _, title in reversed(self.headings):
            if normalize(title) != normalize(self.subject):
                return title
        return ""

    def run(self) -> list[Candidate]:
        for block in blocks(self.text):
            self.block = block.start
            if block.kind == "heading":
                self._heading(block.level, block.title)
            elif block.kind == "table" and _has_header(block):
                self._table(block)
            elif block.kind == "list":
                for item in list_items(block):
                    self.block = item.start
                    self._list_item(item.text, item.start, item.end)
            elif block.kind in ("prose", "table"):
                self._prose(block)
        return self.out

    # -- blocks --------------------------------------------------------------------------------
    def _heading(self, level: int, title: str) -> None:
        self.headings = [(lv, t) for lv, t in self.headings if lv < level]
        self.headings.append((level, plain(title)))

    def _prose(self, block: Block) -> None:
        text, start = block.text, block.start
        first, _, rest = text.partition("\n")
        if _heading_line(first, rest):
            # PDF and plain-text headings carry no markup: a short unpunctuated line. It is context,
            # not an insight ("Power and movement."), one level below any markdown heading.
            self._heading(7, first.strip())
            if not rest.strip():
                return
            start += len(first) + 1
            text = rest
        for s, e in split_sentences(text):
            sentence = "\n".join(unquote(line) for line in text[s:e].split("\n"))
            self._add(plain(sentence), start + s, start + e, "prose")

    def _table(self, block: Block) -> None:
        lines = block.text.split("\n")
        header = _cells(lines[0])
        offset = block.start + len(lines[0]) + len(lines[1]) + 2
        for line in lines[2:]:
            sentence = table_sentence(header, _cells(line))
            if sentence:
                self._add(sentence, offset, offset + len(line), "table")
            offset += len(line) + 1

    def _list_item(self, text: str, start: int, end: int) -> None:
        # An item is one insight ("Hardware is led by Priya Vance. The team designs the arm."): its
        # second sentence needs the first. Only an over-long item is cut at its sentences.
        if len(words(text)) <= MAX_WORDS:
            self._add(plain(text), start, end, "list")
            return
        for s, e in split_sentences(text):
            self._add(plain(text[s:e]), start, end, "list")

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
        text, context = self._standalone(text, kind)
        if len(words(text)) < MIN_ITEM_WORDS:
            return
        if text.rstrip("\"'”’)]」』")[-1:] not in (".", "!", "?", "…", "。", "！", "？"):
            text += "."
        if self._lean(text, kind, end):
            return
        if context:
            text = f"{', '.join(context)}: {text}"
        self.out.append(Candidate(text, self.number, start, end, kind, self.section, context, self.block))

    def _lean(self, text: str, kind: Kind, end: int) -> bool:
        """Join a sentence that opens with an unresolved pronoun to the sentence before it in the same
        paragraph, so the insight keeps its subject ("The Picker P3 is … It went on sale in 2030.")."""
        if kind != "prose" or not _LEANING.match(text) or not self.out:
            return False
        before = self.out[-1]
        if before.block != self.block or before.page != self.number or before.kind != "prose":
            return False
        if len(words(before.text)) + len(words(text)) > MAX_WORDS:
            return False
        self.out[-1] = Candidate(
            f"{before.text} {text}",
            self.number,
            before.start,
            end,
            "prose",
            before.section,
            before.context,
            self.block,
        )
        return True

    def _standalone(self, text: str, kind: Kind) -> tuple[str, tuple[str, ...]]:
        """The sentence made to stand alone, and the context to put before it."""
        text = text[0].upper() + text[1:] if text[0].islower() and kind != "prose" else text
        if self.subject and _NAME.match(self.subject):
            match = _PERSON_PRONOUN.match(text)
            if match:
                pronoun = match.group(1)
                # "He"/"She" are the subject; "His"/"Her" before a noun are possessive. "Her" as an
                # object never opens a sentence, so reading it as possessive is safe.
                name = self.subject if pronoun in ("He", "She") else f"{self.subject}'s"
                return name + text[len(pronoun) :], ()
        mentioned = {w.lower() for w in words(text)}
        if kind != "prose" and self.subject_words and not (self.subject_words & mentioned):
            return text, tuple(part for part in (self.subject, self.section) if part)
        section = self.section
        if kind == "prose" and section and _FRAGMENT.match(text) and not self._in_section():
            # "## Sandvik Fruit Estate / A large estate with old trees." is about Sandvik Fruit Estate.
            return text, (section,)
        return text, ()

    def _in_section(self) -> bool:
        """Whether a sentence of the current section on this page came before."""
        return bool(self.out) and self.out[-1].page == self.number and self.out[-1].section == self.section


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
