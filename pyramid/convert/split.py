"""Cut markdown without real pages into pages of at most ``max_chars`` characters.

Pages break at headings: consecutive sections are packed onto one page while they fit. A section
longer than the cap is split at its blocks (paragraphs, lists, tables, code), a block at its
sentences (table rows, list items, code lines), and only a single sentence longer than the cap is
cut, at a word boundary. Nothing is dropped: joining the pages gives back every word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..text import Block, blocks, list_items, sentences
from ..text.markdown import FENCE

_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}")


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    joiner: str  # put before this unit when it shares a page with the one before
    keep_with_next: bool = False  # a heading: never the last thing on a page
    cuttable: bool = False  # one sentence longer than the cap: may be cut at any word boundary


def split_pages(markdown: str, max_chars: int) -> list[str]:
    """Pages of at most ``max_chars`` characters, broken at headings, never inside a sentence."""
    markdown = markdown.strip()
    if not markdown:
        return []
    if len(markdown) <= max_chars:
        return [markdown]
    units: list[_Unit] = []
    for section in _sections(blocks(markdown)):
        text = "".join((_joiner(block) if n else "") + block.text for n, block in enumerate(section))
        if len(text) <= max_chars:
            units.append(_Unit(text, "\n\n"))
            continue
        for block in section:
            if len(block.text) <= max_chars:
                units.append(_Unit(block.text, _joiner(block), keep_with_next=block.kind == "heading"))
            else:
                units.extend(_with_joiner(_split_block(block, max_chars), _joiner(block)))
    return _pack(units, max_chars)


def _joiner(block: Block) -> str:
    return "\n" if block.tight else "\n\n"


def _sections(parsed: list[Block]) -> list[list[Block]]:
    sections: list[list[Block]] = []
    for block in parsed:
        if block.kind == "heading" or not sections:
            sections.append([block])
        else:
            sections[-1].append(block)
    return sections


def _split_block(block: Block, cap: int) -> list[_Unit]:
    if block.kind == "table":
        return _split_table(block.text, cap)
    if block.kind == "code":
        return _split_code(block.text, cap)
    if block.kind == "list":
        return _first(_split_list(block.text, cap))
    return _first(_split_prose(block.text, cap))


def _first(units: list[_Unit]) -> list[_Unit]:
    """The first piece of a block starts a new paragraph on the page it lands on."""
    if units:
        units[0] = _Unit(units[0].text, "\n\n")
    return units


def _split_table(text: str, cap: int) -> list[_Unit]:
    """Chunks of whole rows, each repeating the header so every page holds a readable table."""
    lines = text.split("\n")
    header_size = 2 if len(lines) > 1 and _TABLE_SEPARATOR.match(lines[1]) else 1
    header = "\n".join(lines[:header_size])
    budget = cap - len(header) - 1
    if budget < cap // 4:  # a header this wide leaves no room: treat the table as text
        return _first(_split_lines(text, cap))
    chunks: list[_Unit] = []
    rows: list[str] = []
    size = 0
    for row in lines[header_size:]:
        for piece in _cut_words(row, budget) if len(row) > budget else [row]:
            if rows and size + 1 + len(piece) > budget:
                chunks.append(_Unit(header + "\n" + "\n".join(rows), "\n\n"))
                rows, size = [], 0
            rows.append(piece)
            size += len(piece) + (1 if size else 0)
    if rows:
        chunks.append(_Unit(header + "\n" + "\n".join(rows), "\n\n"))
    return chunks


def _split_code(text: str, cap: int) -> list[_Unit]:
    """Chunks of whole lines, each closed and reopened with the block's own fence."""
    lines = text.split("\n")
    opening = lines[0]
    marker = FENCE.match(opening)
    closing = marker.group(1) if marker else "```"
    has_close = len(lines) > 1 and lines[-1].strip().startswith(closing[:3])
    body = lines[1:-1] if has_close else lines[1:]
    budget = cap - len(opening) - len(closing) - 2
    if budget < cap // 4:
        return _first(_split_lines(text, cap))
    units = [_Unit(f"{opening}\n{chunk}\n{closing}", "\n\n") for chunk in _pack_lines(body, budget)]
    return units


def _split_list(text: str, cap: int) -> list[_Unit]:
    units: list[_Unit] = []
    for entry in list_items(Block("list", text, 0, len(text))):
        item = entry.source
        if len(item) <= cap:
            units.append(_Unit(item, "\n"))
        else:
            units.extend(_with_joiner(_split_prose(item, cap), "\n"))
    return units


def _split_prose(text: str, cap: int) -> list[_Unit]:
    units: list[_Unit] = []
    for sentence in sentences(text):
        if len(sentence) <= cap:
            units.append(_Unit(sentence, " "))
        elif "\n" in sentence:
            units.extend(_with_joiner(_split_lines(sentence, cap), " "))
        else:
            units.append(_Unit(sentence, " ", cuttable=True))
    return units


def _split_lines(text: str, cap: int) -> list[_Unit]:
    units: list[_Unit] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        units.append(_Unit(line.strip(), "\n", cuttable=len(line) > cap))
    return units


def _with_joiner(units: list[_Unit], joiner: str) -> list[_Unit]:
    if units:
        units[0] = _Unit(units[0].text, joiner)
    return units


def _cut_words(text: str, cap: int) -> list[str]:
    """Cut one over-long sentence at word boundaries; a word longer than the cap is cut hard."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > cap:
        cut = rest.rfind(" ", 0, cap + 1)
        if cut <= 0:
            cut = cap
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _pack_lines(lines: list[str], budget: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        for piece in _cut_words(line, budget) if len(line) > budget else [line]:
            if current and size + 1 + len(piece) > budget:
                chunks.append("\n".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + (1 if size else 0)
    if current:
        chunks.append("\n".join(current))
    return chunks


def _pack(units: list[_Unit], cap: int) -> list[str]:
    pages: list[str] = []
    current = ""
    min_fill = max(1, cap // 5)  # an over-long sentence starts on the current page if this much room is left
    for index, unit in enumerate(units):
        text, joiner = unit.text, unit.joiner
        if current and unit.keep_with_next and index + 1 < len(units):
            following = units[index + 1]
            need = min(len(following.text), min_fill) if following.cuttable else len(following.text)
            if len(current) + len(joiner) + len(text) + len(following.joiner) + need > cap:
                pages.append(current)
                current = ""
        while True:
            room = cap - len(current) - len(joiner) if current else cap
            if len(text) <= room:
                current = current + joiner + text if current else text
                break
            # An empty page takes a cut of anything, so the loop always makes progress.
            if (unit.cuttable and room >= min_fill) or not current:
                piece, text = _cut_once(text, room, hard=not current)
                if piece:
                    current = current + joiner + piece if current else piece
                joiner = " "
            pages.append(current)
            current = ""
    if current:
        pages.append(current)
    return pages


def _cut_once(text: str, room: int, *, hard: bool) -> tuple[str, str]:
    """The longest word-boundary prefix of ``text`` within ``room`` chars, and the rest.

    With ``hard`` (an empty page) a word longer than the page is cut where the page ends.
    """
    cut = text.rfind(" ", 0, room + 1)
    if cut <= 0:
        if not hard:
            return "", text
        cut = room
    return text[:cut].rstrip(), text[cut:].lstrip()
