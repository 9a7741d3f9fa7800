"""The sentence splitter.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (then closing quotes or brackets) before whitespace,
or at a CJK full stop ``。！？`` (Japanese and Chinese put no space after one). A period is not an end
when the next word starts in lower case ("3 p.m. on the pier", "e.g. the gripper"), after an
initial ("J. Smith"), or after an abbreviation. Abbreviations come in four kinds, because "Gen." and
"p.m." look alike but behave differently before a capital:

- titles always precede a name: "Gen. Smith", "Dr. Reed";
- references precede a number: "Sec. 4", "p. 12", "No. 5", "Jan. 3" (before a word they can end a
  sentence: "in Dec. The");
- connectives never end a sentence: "e.g.", "i.e.", "vs.";
- the rest can end one ("at 3 p.m. Then", "in the U.S. The", "etc. It"): they end it when the next
  word is a common sentence opener, and otherwise not ("the U.S. Army").

Decimals ("3.5") and dotted names ("v1.2", "example.com") never split, as no whitespace follows
their period.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[\"'”’」』)\]]*")
_SPACE = re.compile(r"\s+")

_TITLES = frozenset(
    "mr mrs ms mx dr prof gen col lt sgt capt cmdr adm maj rev hon gov sen rep pres st mt ft messrs".split()
)
_REFERENCES = frozenset(
    "no nos fig figs eq eqs vol vols p pp ch chap sec sect art para ref refs tab "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_CONNECTIVES = frozenset("e.g i.e cf vs viz approx ca esp incl resp".split())
_ENDINGS = frozenset("etc a.m p.m u.s u.k u.n e.u inc ltd co corp bros jr sr esq al ph.d dept est".split())
# Words that open a sentence after an abbreviation that can end one ("at 3 p.m. Then …").
_OPENERS = frozenset(
    "a an the this that these those it its they their there then he she his her we our i you "
    "in on at by for from after before but and or so yet when while if as since however meanwhile "
    "today later finally also".split()
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, without the whitespace around it."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        if match.group(0)[0] not in "。！？" and not _ends_here(text, start, match.start(), end):
            continue
        _add(text, start, end, spans)
        start = end
    _add(text, start, len(text), spans)
    return spans


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each with its inner whitespace as it was."""
    return [text[start:end] for start, end in sentence_spans(text)]


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        first = start + (len(piece) - len(piece.lstrip()))
        spans.append((first, first + len(stripped)))


def _ends_here(text: str, start: int, stop: int, after: int) -> bool:
    """Whether the punctuation between ``stop`` and ``after`` ends the sentence begun at ``start``."""
    following = text[after:].lstrip()
    if not following:
        return True
    first = following.lstrip("\"'“‘([*_")[:1]
    if first.islower():
        return False  # "e.g. the", "3 p.m. on"
    if text[stop] != ".":
        return True  # ! ? … before a capital
    words = text[start:stop].rsplit(None, 1)
    word = words[-1].lower().lstrip("([\"'“‘*_") if words else ""
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith"
    if word in _TITLES or word in _CONNECTIVES:
        return False
    if word in _REFERENCES:
        return not first.isdigit()  # "Sec. 4", but "in Dec. The"
    if word in _ENDINGS:
        next_word = _SPACE.split(following, maxsplit=1)[0].strip("\"'“‘([*_,;:").lower()
        return next_word in _OPENERS
    return True
