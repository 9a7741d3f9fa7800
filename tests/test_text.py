"""The text toolkit (``pyramid.text``) and its three users: page splitting, insight segmentation and
evidence selection cut the same text into the same sentences."""

from __future__ import annotations

import pytest

from pyramid.convert import split
from pyramid.distill.extractive.segment import normalize, segment
from pyramid.search.evidence import _sentences as evidence_sentences
from pyramid.text import blocks, list_items, sentences

pytestmark = pytest.mark.unit

# Each case: a text and the sentences it is made of.
TRICKY = [
    pytest.param(
        "Prices rose at 3 p.m. Then Gen. Smith spoke. The U.S. economy grew. See Sec. 4 for details. "
        "東京は晴れ。大阪は雨。",
        [
            "Prices rose at 3 p.m.",
            "Then Gen. Smith spoke.",
            "The U.S. economy grew.",
            "See Sec. 4 for details.",
            "東京は晴れ。",
            "大阪は雨。",
        ],
        id="issue-bug-3",
    ),
    pytest.param(
        "Dr. Reed met Mr. Castell at 3 p.m. on the pier. The boats left early.",
        ["Dr. Reed met Mr. Castell at 3 p.m. on the pier.", "The boats left early."],
        id="titles-and-time",
    ),
    pytest.param(
        "The rate rose to 3.5 percent in 2030. Prices fell again in 2031.",
        ["The rate rose to 3.5 percent in 2030.", "Prices fell again in 2031."],
        id="decimals-and-years",
    ),
    pytest.param(
        "J. R. R. Tolkien wrote many books. Readers still love them.",
        ["J. R. R. Tolkien wrote many books.", "Readers still love them."],
        id="initials",
    ),
    pytest.param(
        "Use a tool, e.g. a wrench or a hammer. Fruit, i.e. apples and pears, counts. Then tighten the bolt.",
        [
            "Use a tool, e.g. a wrench or a hammer.",
            "Fruit, i.e. apples and pears, counts.",
            "Then tighten the bolt.",
        ],
        id="e.g.-i.e.",
    ),
    pytest.param(
        "The U.S. Army bought ten robots. The order came in Dec. The robots came later.",
        ["The U.S. Army bought ten robots.", "The order came in Dec.", "The robots came later."],
        id="abbreviation-before-a-name-or-at-the-end",
    ),
    pytest.param(
        "See Fig. 3 for the layout. Pages pp. 10-12 list the parts. No. 5 is the gripper arm.",
        ["See Fig. 3 for the layout.", "Pages pp. 10-12 list the parts.", "No. 5 is the gripper arm."],
        id="references-before-numbers",
    ),
    pytest.param(
        "Is the robot ready? Yes, the robot works! Everyone cheered loudly… Work resumed on Monday.",
        [
            "Is the robot ready?",
            "Yes, the robot works!",
            "Everyone cheered loudly…",
            "Work resumed on Monday.",
        ],
        id="question-exclamation-ellipsis",
    ),
    pytest.param(
        "Ruth said “Stop the robot now.” The robot stopped at once.",
        ["Ruth said “Stop the robot now.”", "The robot stopped at once."],
        id="closing-quote",
    ),
    pytest.param(
        "Firmware v3.2 ships from example.com today. Owners install the update soon.",
        ["Firmware v3.2 ships from example.com today.", "Owners install the update soon."],
        id="dotted-names",
    ),
    pytest.param(
        "机器人今天很快。它很好用！你喜欢吗？",
        ["机器人今天很快。", "它很好用！", "你喜欢吗？"],
        id="chinese",
    ),
]


@pytest.mark.parametrize(("text", "expected"), TRICKY)
def test_the_splitter(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@pytest.mark.parametrize(("text", "expected"), TRICKY)
def test_page_splitting_cuts_at_the_same_sentences(text: str, expected: list[str]) -> None:
    assert [unit.text for unit in split._split_prose(text, 10_000)] == expected
    # Pages too small for the whole text hold whole sentences: each is a run of them.
    pages = split.split_pages(text, max(len(s) for s in expected) + 1)
    rest = list(expected)
    for page in pages:
        run = []
        while rest and " ".join([*run, rest[0]]) in page:
            run.append(rest.pop(0))
        assert page == " ".join(run)
    assert not rest


@pytest.mark.parametrize(("text", "expected"), TRICKY)
def test_insight_segmentation_cuts_at_the_same_sentences(text: str, expected: list[str]) -> None:
    found = segment([text], subject="")
    assert [c.text for c in found] == expected
    assert [text[c.start : c.end] for c in found] == expected  # spans point at the page text


@pytest.mark.parametrize(("text", "expected"), TRICKY)
def test_evidence_selection_reads_the_same_sentences(text: str, expected: list[str]) -> None:
    assert evidence_sentences(text) == {" ".join(s.lower().split()).rstrip(".!?…。！？") for s in expected}
    assert len(evidence_sentences(text)) == len(expected)


def test_the_bug_text_is_six_insights_not_one() -> None:
    text = TRICKY[0].values[0]
    found = segment([text], subject="")
    assert len(found) == 6
    assert normalize(found[-1].text) == normalize("大阪は雨")


def test_blocks_keep_their_source_and_kind() -> None:
    text = (
        "# Title\nIntro line.\n- item a\n  still a\n- item b\nAfter the list.\n\n"
        "| a | b |\n| --- | --- |\n| 1 | 2 |\n\n```\ncode. Not prose.\n```\nSetext\n------\n> ## Quoted"
    )
    parsed = blocks(text)
    assert [b.kind for b in parsed] == [
        "heading",
        "prose",
        "list",
        "prose",
        "table",
        "code",
        "heading",
        "heading",
    ]
    assert all(text[b.start : b.end] == b.text for b in parsed)
    assert [b.tight for b in parsed] == [False, False, True, True, False, False, False, False]
    assert [(b.level, b.title) for b in parsed if b.kind == "heading"] == [
        (1, "Title"),
        (2, "Setext"),
        (2, "Quoted"),
    ]
    items = list_items(parsed[2])
    assert [i.text for i in items] == ["item a still a", "item b"]
    assert [text[i.start : i.end] for i in items] == ["- item a\n  still a", "- item b"]


def test_an_unclosed_fence_runs_to_the_end() -> None:
    parsed = blocks("Text.\n\n```\nx = 1\n\ny = 2")
    assert [b.kind for b in parsed] == ["prose", "code"]
    assert parsed[1].text == "```\nx = 1\n\ny = 2"
