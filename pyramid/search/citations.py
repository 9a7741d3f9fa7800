"""Citations in an answer: ``[file, p. N]``, ``[file, pp. 2–3]``, ``[file]`` or ``[recollection N]``.

``check`` finds every citation in a text and resolves it against the evidence the answer was written
from; what it cannot resolve goes back to the model (the answer step's output validator). A bracket
that is not a citation (``[sic]``, ``[1]``) is left alone; one that names a file is a citation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..models import LEVELS, QUOTE_CHARS, Citation, Evidence
from .evidence import format_pages

__all__ = ["QUOTE_CHARS", "Citation", "CitationCheck", "check", "without_rejected"]

# A bracketed group that is not a markdown link "[text](url)".
_BRACKET = re.compile(r"\[([^\[\]\n]{1,400})\](?!\()")
_PAGED = re.compile(r"^(?P<label>.+?),\s*(?:pages?|pp?)\.?\s*(?P<pages>\d[\d\s,–—\-&and]*)$", re.IGNORECASE)
_RANGE = re.compile(r"(\d+)\s*(?:[-–—]\s*(\d+))?")
_LEVEL_ITEM = re.compile(rf"^(?P<level>{'|'.join(LEVELS)})\s+#?(?P<id>\d+)$", re.IGNORECASE)
_FILE_LIKE = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,5}(#\S*)?$")
MAX_PAGES_IN_RANGE = 500
_QUOTES = "`\"'"


@dataclass
class CitationCheck:
    citations: list[Citation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # the citations behind the problems, as written


@dataclass(frozen=True)
class _Ref:
    raw: str
    label: str
    pages: tuple[int, ...]


def _pages(spec: str) -> tuple[int, ...] | None:
    numbers: list[int] = []
    for match in _RANGE.finditer(spec):
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first or last - first > MAX_PAGES_IN_RANGE:
            return None
        numbers.extend(range(first, last + 1))
    return tuple(sorted(set(numbers))) or None


def _refs(text: str, labels: set[str]) -> list[_Ref]:
    refs = []
    for match in _BRACKET.finditer(text):
        # "[a.md, p. 2; b.pdf, p. 3]" cites two sources in one bracket.
        for part in match.group(1).split(";"):
            part = part.strip().strip(_QUOTES)
            if not part:
                continue
            paged = _PAGED.match(part)
            if paged:
                pages = _pages(paged.group("pages"))
                label = paged.group("label").strip().strip("`\"'")
                refs.append(_Ref(f"[{part}]", label, pages if pages is not None else (-1,)))
            elif part in labels or _LEVEL_ITEM.match(part) or _FILE_LIKE.search(part):
                refs.append(_Ref(f"[{part}]", part, ()))
    return refs


def check(text: str, evidence: Sequence[Evidence]) -> CitationCheck:
    """Resolve every citation in ``text`` against ``evidence``; list what does not resolve."""
    by_label: dict[str, list[Evidence]] = {}
    by_item: dict[tuple[str, int], Evidence] = {}
    for item in evidence:
        if item.document is not None:
            by_label.setdefault(item.document, []).append(item)
        else:
            by_item[(item.level, item.id)] = item
    result = CitationCheck()
    seen: set[tuple[str, tuple[int, ...]]] = set()
    for ref in _refs(text, set(by_label)):
        key = (ref.label, ref.pages)
        if key in seen:
            continue
        seen.add(key)
        backing = _resolve(ref, by_label, by_item)
        if isinstance(backing, str):
            result.problems.append(backing)
            result.rejected.append(ref.raw)
            continue
        result.citations.append(
            Citation(
                cite=ref.raw,
                document=backing.document,
                source=backing.source,
                pages=list(ref.pages) if ref.pages else backing.pages,
                item_id=backing.id,
                level=backing.level,
                quote=backing.clipped(QUOTE_CHARS).text,
            )
        )
    return result


def _resolve(
    ref: _Ref, by_label: dict[str, list[Evidence]], by_item: dict[tuple[str, int], Evidence]
) -> Evidence | str:
    """The evidence item behind ``ref``, or why there is none."""
    if ref.pages == (-1,):
        return f"{ref.raw} has page numbers that cannot be read; write them as p. N or pp. N–M"
    level_item = _LEVEL_ITEM.match(ref.label)
    if level_item and not ref.pages:
        found = by_item.get((level_item.group("level").lower(), int(level_item.group("id"))))
        return found if found is not None else f"{ref.raw} is not in the evidence"
    items = by_label.get(ref.label)
    if not items:
        return f"{ref.raw}: {ref.label!r} is not a document in the evidence"
    if not ref.pages:
        return items[0]
    covered = {page for item in items for page in item.pages}
    missing = [p for p in ref.pages if p not in covered]
    if missing:
        have = format_pages(sorted(covered)) or "no page numbers"
        return f"{ref.raw}: the evidence from {ref.label} covers {have}, not {format_pages(missing)}"
    # The item that covers most of the cited pages, earliest in the (ranked) evidence on a tie.
    return max(items, key=lambda item: len(set(item.pages) & set(ref.pages)))


def without_rejected(text: str, evidence: Sequence[Evidence]) -> tuple[str, list[str]]:
    """``text`` with every citation that does not resolve against ``evidence`` taken out (a bracket
    keeps the sources of it that resolve), and those citations as written."""
    found = check(text, evidence).rejected
    rejected = set(found)
    if not rejected:
        return text, []

    def keep(match: re.Match[str]) -> str:
        parts = [part.strip() for part in match.group(1).split(";")]
        kept = [part for part in parts if "[" + part.strip(_QUOTES) + "]" not in rejected]
        return f"[{'; '.join(kept)}]" if kept else ""

    cleaned = _BRACKET.sub(keep, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return cleaned, found
