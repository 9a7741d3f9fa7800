"""The markdown block parser: a document as headings, code, tables, lists, rules and prose.

Line-based and forgiving, for what converters and people write rather than the full CommonMark
grammar. Every block keeps its exact source text and span, so a page splitter can give back every
word and a segmenter can trace a sentence back to its characters. A block cut from the lines
around it only because its kind changed (a list right under a paragraph, a paragraph right after a
table) is ``tight``: a splitter joins it to the block before with one newline, as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

BlockKind = Literal["heading", "code", "table", "list", "rule", "prose"]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
LIST_ITEM = re.compile(r"^([ \t]*)(?:[-*+•]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?(.*)$")
TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_QUOTE = re.compile(r"^[ \t]*>[ \t]?")


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    text: str  # the exact source text, without the newline that ends it
    start: int  # span in the parsed text
    end: int
    level: int = 0  # a heading's level (1-6)
    title: str = ""  # a heading's text, without its markers
    tight: bool = False  # the line before it ends the block before: nothing but a change of kind between


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a list block."""

    text: str  # the item's words: marker dropped, continuation lines joined by one space
    source: str  # its exact source lines
    start: int
    end: int


def unquote(line: str) -> str:
    """A line without its block-quote marker (``> ``)."""
    return _QUOTE.sub("", line)


def blocks(text: str) -> list[Block]:
    """The blocks of ``text`` in order; blank lines separate blocks and belong to none."""
    return _Parser(text).run()


def list_items(block: Block) -> list[Item]:
    """The items of a list block: a line with a marker starts one, deeper-indented lines continue it."""
    items: list[Item] = []
    lines = _lines(block.text, block.start)
    current: list[tuple[int, str]] = []

    def close() -> None:
        if current:
            first = LIST_ITEM.match(current[0][1])
            body = [first.group(2) if first else current[0][1].strip()]
            body += [line.strip() for _, line in current[1:]]
            start, end = current[0][0], current[-1][0] + len(current[-1][1])
            items.append(
                Item(
                    " ".join(part for part in body if part),
                    block.text[start - block.start : end - block.start],
                    start,
                    end,
                )
            )
            current.clear()

    for offset, line in lines:
        if LIST_ITEM.match(line) or not current:
            close()
        current.append((offset, line))
    close()
    return items


def is_table_start(line: str, following: str | None) -> bool:
    return line.lstrip().startswith("|") and following is not None and bool(TABLE_SEPARATOR.match(following))


def _lines(text: str, base: int = 0) -> list[tuple[int, str]]:
    out = []
    offset = base
    for line in text.split("\n"):
        out.append((offset, line))
        offset += len(line) + 1
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[Block] = []
        self.lines: list[tuple[int, str]] = []
        self.kind: BlockKind = "prose"
        self.item_indent = 0
        self.tight = False  # whether the block being collected is tight

    def run(self) -> list[Block]:
        lines = _lines(self.text)
        fence: str | None = None
        for index, (offset, line) in enumerate(lines):
            if fence is not None:
                self.lines.append((offset, line))
                stripped = line.strip()
                if stripped.startswith(fence) and not stripped.strip(fence[0]):
                    self._emit("code")
                    fence = None
                continue
            body = unquote(line)
            following = lines[index + 1][1] if index + 1 < len(lines) else None
            if match := FENCE.match(line):
                self.flush()
                fence = match.group(1)
                self.kind = "code"
                self.lines.append((offset, line))
            elif not line.strip():
                self.flush()
            elif heading := _ATX.match(body):
                self.flush()
                self._single(offset, line, "heading", len(heading.group(1)), heading.group(2) or "")
            elif (
                self.lines
                and self.kind == "prose"
                and _SETEXT.match(line)
                and not _starts_block(self.lines[-1][1])
            ):
                underlined = self.lines.pop()
                self.flush()
                self.lines = [underlined, (offset, line)]
                level = 1 if line.strip()[0] == "=" else 2
                self._emit("heading", level, underlined[1].strip())
            elif not self.lines and _RULE.match(line):
                self._single(offset, line, "rule")
                self.tight = True
            elif (
                self.kind == "table"
                and self.lines
                and (line.lstrip().startswith("|") or line.count("|") >= 2)
            ):
                self.lines.append((offset, line))
            elif line.lstrip().startswith("|") and (not self.lines or is_table_start(line, following)):
                self.flush(tight=True)
                self.kind = "table"
                self.lines.append((offset, line))
            elif item := LIST_ITEM.match(line):
                if not (self.lines and self.kind == "list"):
                    self.flush(tight=True)
                    self.kind = "list"
                self.item_indent = len(item.group(1))
                self.lines.append((offset, line))
            elif self.lines and self.kind == "list" and _indent(line) <= self.item_indent:
                self.flush(tight=True)  # not indented under the item: a paragraph after the list
                self.lines.append((offset, line))
            elif self.lines and self.kind == "table":
                self.flush(tight=True)
                self.lines.append((offset, line))
            else:
                self.lines.append((offset, line))
        self.flush()  # an unclosed fence runs to the end of the text
        return self.out

    def flush(self, *, tight: bool = False) -> None:
        """End the block being collected; ``tight``: the next one only changes kind."""
        if self.lines:
            self._emit(self.kind)
            self.tight = tight
        else:
            self.tight = self.tight and tight

    def _single(self, offset: int, line: str, kind: BlockKind, level: int = 0, title: str = "") -> None:
        self.lines = [(offset, line)]
        self._emit(kind, level, title.strip())

    def _emit(self, kind: BlockKind, level: int = 0, title: str = "") -> None:
        start = self.lines[0][0]
        end = self.lines[-1][0] + len(self.lines[-1][1])
        self.out.append(Block(kind, self.text[start:end], start, end, level, title, self.tight))
        self.lines = []
        self.kind = "prose"
        self.tight = False


def _starts_block(line: str) -> bool:
    return line.lstrip().startswith(("|", "-", "*", "+", ">"))
