"""Citations: page lists, document labels, and resolving what an answer cites against its evidence."""

from __future__ import annotations

import pytest

from pyramid.models import Evidence
from pyramid.search.citations import check
from pyramid.search.evidence import Labels, cite, format_pages

pytestmark = pytest.mark.unit  # no PostgreSQL, no model: the fast layer


def ev(
    item_id: int, level: str, document: str | None, pages: list[int], text: str = "Some fact."
) -> Evidence:
    return Evidence(
        id=item_id,
        level=level,
        text=text,
        document=document,
        pages=pages,  # type: ignore[arg-type]
        source=f"/docs/{document}" if document else None,
        cite=cite(document, pages, item_id=item_id, level=level),
    )  # type: ignore[arg-type]


EVIDENCE = [
    ev(1, "insight", "spec.pdf", [2], "The P3 carries a 4.2 kWh battery."),
    ev(2, "concept", "spec.pdf", [2, 3], "Power and movement."),
    ev(3, "insight", "handbook.md", [1]),
    ev(4, "abstract", "roadmap.pptx", []),
    ev(5, "recollection", None, [], "Ruth Calder reviews the incident log."),
]


@pytest.mark.parametrize(
    ("pages", "shown"),
    [
        ([3], "p. 3"),
        ([2, 3, 4], "pp. 2–4"),
        ([7, 2, 3], "pp. 2–3, 7"),
        ([], ""),
        ([5, 5], "p. 5"),
    ],
)
def test_format_pages(pages: list[int], shown: str) -> None:
    assert format_pages(pages) == shown


def test_cite_strings() -> None:
    assert [e.cite for e in EVIDENCE] == [
        "[spec.pdf, p. 2]",
        "[spec.pdf, pp. 2–3]",
        "[handbook.md, p. 1]",
        "[roadmap.pptx]",
        "[recollection 5]",
    ]


def test_labels_are_file_names_and_tell_clashing_files_apart_without_renaming_the_first() -> None:
    labels = Labels()
    assert labels("/a/q1/report.pdf", "/a/q1/report.pdf") == "report.pdf"
    assert labels("/a/q2/report.pdf", "/a/q2/report.pdf") == "q2/report.pdf"
    assert labels("/a/q1/report.pdf", "/a/q1/report.pdf") == "report.pdf"  # stable once given
    assert labels("/f/news.rss#https://x.example/news/fh-7/", "/f/news.rss") == "news.rss#fh-7"
    assert labels("/f/news.rss#tag:x.example,2031:1", "/f/news.rss") == "news.rss#tag:x.example,2031:1"
    assert labels("/d/odd[1].md", "/d/odd[1].md") == "odd(1).md"


def test_every_citation_form_resolves_to_the_item_that_backs_it() -> None:
    text = (
        "The battery holds 4.2 kWh [spec.pdf, p. 2]. Power is covered on [spec.pdf, pp. 2-3]; see also "
        "[roadmap.pptx] and [handbook.md, p. 1; recollection 5]. [sic] stays text, as does [1] and [a link](x)."
    )
    result = check(text, EVIDENCE)
    assert result.problems == []
    assert [(c.cite, c.item_id, c.pages) for c in result.citations] == [
        ("[spec.pdf, p. 2]", 1, [2]),
        ("[spec.pdf, pp. 2-3]", 2, [2, 3]),
        ("[roadmap.pptx]", 4, []),
        ("[handbook.md, p. 1]", 3, [1]),
        ("[recollection 5]", 5, []),
    ]
    assert result.citations[0].quote == "The P3 carries a 4.2 kWh battery."


def test_repeated_citations_are_listed_once() -> None:
    assert len(check("A [spec.pdf, p. 2]. B [spec.pdf, p. 2].", EVIDENCE).citations) == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Cancelled [secrets.txt, p. 9].", "'secrets.txt' is not a document in the evidence"),
        ("See [secrets.txt].", "'secrets.txt' is not a document in the evidence"),
        ("Battery [spec.pdf, p. 7].", "covers pp. 2–3, not p. 7"),
        ("Battery [spec.pdf, pp. 2-9].", "covers pp. 2–3, not pp. 4–9"),
        ("Memory [recollection 99].", "[recollection 99] is not in the evidence"),
        ("Huge [spec.pdf, pp. 1-100000].", "cannot be read"),
    ],
)
def test_what_is_not_in_the_evidence_is_a_problem(text: str, problem: str) -> None:
    result = check(text, EVIDENCE)
    assert len(result.problems) == 1 and problem in result.problems[0]
    assert result.citations == []
