"""The extractive pyramid reads well where a person looks first (the example documents): no
repeated heading prefixes in an abstract, no heading-only insights, no sentence without its subject."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pyramid import Pyramid

DOCS = Path(__file__).resolve().parent.parent / "examples" / "docs"
FILES = ["handbook.md", "picker-p3-spec.pdf", "customers.html", "news.rss"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    for name in FILES:
        shutil.copy(DOCS / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def kp(dsn: str, docs: Path):  # type: ignore[no-untyped-def]
    with Pyramid.open(dsn=dsn) as pyramid:
        report = pyramid.ingest([docs])
        assert report.ok, report.failed
        yield pyramid


def _insights(kp: Pyramid, ref: Path | int) -> list[str]:
    return [i.text for i in kp.document(ref if isinstance(ref, int) else str(ref)).insights]


def test_the_abstract_gives_a_heading_prefix_once(kp: Pyramid, docs: Path) -> None:
    abstract = kp.document(str(docs / "handbook.md")).abstract[0].text
    assert abstract.count("Fernhollow Robotics Employee Handbook") <= 1
    assert abstract.count("Teams:") <= 1
    # The team sentences are still there, without the prefix.
    assert "is led by" in abstract


def test_a_list_item_keeps_its_second_sentence_with_its_first(kp: Pyramid, docs: Path) -> None:
    texts = _insights(kp, docs / "handbook.md")
    designs = [t for t in texts if "designs the arm" in t]
    assert len(designs) == 1
    assert "Hardware is led by Priya Vance." in designs[0]


def test_no_heading_becomes_an_insight(kp: Pyramid, docs: Path) -> None:
    texts = _insights(kp, docs / "picker-p3-spec.pdf")
    assert "Power and movement." not in texts
    assert "Picker P3 Product Specification." not in texts
    assert not any(t.startswith("Comparison with the Picker P2 The table") for t in texts)
    assert "The table below compares the P3 with the P2, which was sold from 2027 to 2029." in texts


def test_a_pronoun_keeps_its_subject(kp: Pyramid, docs: Path) -> None:
    texts = _insights(kp, docs / "picker-p3-spec.pdf")
    assert (
        "The Picker P3 is the third generation of the Fernhollow orchard robot. It went on sale in March 2030."
        in texts
    )
    assert not any(t.startswith(("It ", "Its ")) for t in texts)
    feed = [doc.id for doc in kp.documents() if "news.rss" in doc.source + doc.path]
    assert len(feed) == 4
    news = [t for ref in feed for t in _insights(kp, ref)]
    assert not any(t.startswith("She ") for t in news)
    assert any(t.startswith("Ruth Calder worked") and "She now reviews" in t for t in news)


def test_an_html_section_keeps_its_subject(kp: Pyramid, docs: Path) -> None:
    texts = _insights(kp, docs / "customers.html")
    assert "Holm Orchards: A family orchard of 60 hectares near Eskerby." in texts
    assert "Greyfield Cider: A cider maker that uses two P2 robots for windfall apples." in texts


@pytest.mark.unit
def test_an_unmarked_heading_line_becomes_the_section() -> None:
    from pyramid.distill.extractive.segment import segment

    found = segment(
        [
            "Power and movement\n\nThe P3 carries a big battery. One charge lasts a shift.\n\nWeekly leads meeting, 3 March\n"
            "Present: Mara and Jonas."
        ],
        subject="Picker P3",
    )
    assert [(c.section, c.text) for c in found] == [
        ("Power and movement", "The P3 carries a big battery."),
        ("Power and movement", "One charge lasts a shift."),
        ("Power and movement", "Weekly leads meeting, 3 March Present: Mara and Jonas."),
    ]
