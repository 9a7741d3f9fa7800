"""Deterministic synthetic corpora for benchmarks: English-like markdown with headings, lists and
tables, a Zipfian vocabulary, and pages of realistic length. No third-party text."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

SUBJECTS = [
    "the committee",
    "the engineering team",
    "our supplier",
    "the board",
    "the survey",
    "the pilot plant",
    "the finance office",
    "the field crew",
    "the regional office",
    "the lab",
    "the audit",
    "the new pump",
    "the harbour authority",
    "the design review",
    "the customer panel",
    "the night shift",
]
VERBS = [
    "reviewed",
    "approved",
    "measured",
    "reported",
    "delayed",
    "replaced",
    "tested",
    "recommended",
    "reduced",
    "increased",
    "documented",
    "rejected",
    "scheduled",
    "inspected",
    "funded",
    "compared",
]
ADJECTIVES = [
    "annual",
    "revised",
    "external",
    "critical",
    "seasonal",
    "preliminary",
    "detailed",
    "shared",
    "regional",
    "manual",
    "automatic",
    "quarterly",
    "independent",
    "temporary",
    "certified",
    "coastal",
]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """Pronounceable made-up words (so they are real lexemes for the text search parser)."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.choice((2, 2, 3, 3, 4))
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


class TextMaker:
    def __init__(self, seed: int = 7, vocab: int = 20_000) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(vocab, self.rng)
        # Zipf: word k is drawn with weight 1/k (cumulative once, not per draw).
        self.cumulative = list(itertools.accumulate(1.0 / (k + 1) for k in range(len(self.words))))

    def nouns(self, n: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=n)

    def sentence(self) -> str:
        rng = self.rng
        subject = rng.choice(SUBJECTS)
        verb = rng.choice(VERBS)
        adjective = rng.choice(ADJECTIVES)
        objects = " ".join(self.nouns(rng.randint(1, 3)))
        tail = " ".join(self.nouns(rng.randint(2, 6)))
        return f"{subject.capitalize()} {verb} the {adjective} {objects} report on {tail}."

    def paragraph(self, sentences: tuple[int, int] = (3, 7)) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(*sentences)))

    def section(self, chars: int) -> str:
        title = " ".join(self.nouns(2)).title()
        parts = [f"## {title}", ""]
        size = 0
        while size < chars:
            kind = self.rng.random()
            if kind < 0.75:
                block = self.paragraph()
            elif kind < 0.9:
                block = "\n".join(f"- {self.sentence()}" for _ in range(self.rng.randint(3, 5)))
            else:
                rows = [
                    f"| {' | '.join(self.nouns(1))} | {self.rng.randint(1, 999)} | {self.rng.choice(ADJECTIVES)} |"
                    for _ in range(self.rng.randint(3, 6))
                ]
                block = "| item | count | state |\n|---|---|---|\n" + "\n".join(rows)
            parts += [block, ""]
            size += len(block)
        return "\n".join(parts)

    def document(self, title: str, sections: int, section_chars: int) -> str:
        body = "\n\n".join(self.section(section_chars) for _ in range(sections))
        return f"# {title}\n\n{self.paragraph()}\n\n{body}\n"


def write_markdown_corpus(
    root: Path, *, files: int, sections: int, section_chars: int = 3000, seed: int = 7
) -> list[Path]:
    """``files`` markdown files of ``sections`` sections each; with the default page cap (4,000
    characters) every section becomes one page."""
    maker = TextMaker(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(files):
        path = root / f"doc-{index:05d}.md"
        text = maker.document(f"Report {index}", sections, section_chars)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
