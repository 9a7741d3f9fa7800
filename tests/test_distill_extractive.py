"""The extractive distiller (no LLM): real properties of what it builds, end to end through ingest."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyramid import Pyramid
from pyramid.distill.extractive.segment import normalize, segment, split_sentences, table_sentence, words

PEOPLE = {
    "Abdul_Gamboa": ("Abdul Gamboa", "Brandy Gamboa", "Desmond Gamboa", "pharmacologist", "fishkeeping"),
    "Aida_Wang": ("Aida Wang", "Shelli Beltran", "Dino Beltran", "personal assistant", "fishkeeping"),
    "Alec_Bly": ("Alec Bly", "Magdalena Bly", "Porter Bly", "pharmacologist", "meditation"),
}


def article(name: str, mother: str, father: str, job: str, hobby: str) -> str:
    """A biography in the PhantomWiki shape: sections of one-sentence facts."""
    return (
        f"# {name}\n\n## Family\nThe mother of {name} is {mother}.\nThe father of {name} is {father}.\n\n"
        f"## Friends\nThe friends of {name} are Demetrius Tedford, Brian Beltran.\n\n"
        f"## Attributes\nThe occupation of {name} is {job}.\nThe hobby of {name} is {hobby}.\n"
        f"The gender of {name} is male.\n"
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("people")
    for stem, fields in PEOPLE.items():
        (folder / f"{stem}.md").write_text(article(*fields))
    report = folder / "report.md"
    report.write_text(
        "# Annual report\n\n## Results\n\nRevenue grew by 12 percent in 2023. The company opened two plants. "
        "Revenue grew by 12 percent in 2023.\n\n## Staff\n\n- 120 engineers\n- 30 sales people\n\n"
        "| Plant | City | Workers |\n|---|---|---|\n| North | Oslo | 80 |\n| South | Porto | 70 |\n\n"
        "## Outlook\n\nThe board expects steady demand. Prices of steel may rise next year.\n"
    )
    return folder


@pytest.fixture(scope="module")
def kp(dsn: str, corpus: Path):  # type: ignore[no-untyped-def]
    # Biographies of different people are alike but not the same (cosine ~0.5-0.65 between their
    # concepts with MiniLM): a lower threshold than the default makes them one theme here.
    with Pyramid.open(dsn=dsn, recollection_threshold=0.5) as pyramid:
        report = pyramid.ingest([corpus])
        assert report.ok, report.failed
        assert report.distiller == "extractive" and report.usage.requests == 0
        yield pyramid


def test_facts_become_insights_verbatim_with_the_subject_named(kp: Pyramid, corpus: Path) -> None:
    view = kp.document(str(corpus / "Abdul_Gamboa.md"))
    texts = [i.text for i in view.insights]
    assert "The father of Abdul Gamboa is Desmond Gamboa." in texts
    assert "The hobby of Abdul Gamboa is fishkeeping." in texts
    assert all("Abdul Gamboa" in text for text in texts)
    assert view.document.distiller == "extractive"
    assert {i.distiller for i in view.insights + view.concepts + view.abstract} == {"extractive"}


def test_every_insight_is_traceable_to_its_page_text(kp: Pyramid, corpus: Path) -> None:
    for path in sorted(corpus.glob("*.md")):
        view = kp.document(str(path))
        pages = {p.ordinal: p for p in view.pages}
        assert view.insights
        for insight in view.insights:
            assert insight.sources == sorted(pages[n].id for n in insight.pages)
            page_words = {w.lower() for n in insight.pages for w in words(pages[n].text)}
            own = [w.lower() for w in words(insight.text)]
            # Table rows and list items gain connecting words ("For … is …"); everything else of the
            # sentence is on the page.
            glue = {"for", "is", "and"}
            missing = [w for w in own if w not in page_words and w not in glue]
            assert not missing, (insight.text, missing)


def test_duplicates_and_structure(kp: Pyramid, corpus: Path) -> None:
    texts = [i.text for i in kp.document(str(corpus / "report.md")).insights]
    assert texts.count("Revenue grew by 12 percent in 2023.") == 1  # the repeated sentence
    # A table row as a sentence, with the heading context it needs to stand alone.
    assert "Annual report, Staff: For Plant North, City is Oslo and Workers is 80." in texts
    assert any(t.endswith("120 engineers.") and "Staff" in t for t in texts)  # a list item with its heading


def test_concepts_partition_the_insights(kp: Pyramid, corpus: Path) -> None:
    for path in sorted(corpus.glob("*.md")):
        view = kp.document(str(path))
        members = [source for concept in view.concepts for source in concept.sources]
        assert sorted(members) == sorted(i.id for i in view.insights)  # each insight in exactly one
        assert all(c.title and c.text for c in view.concepts)


def test_abstract_is_central_sentences_within_the_budget(kp: Pyramid, corpus: Path) -> None:
    budget = kp.settings.abstract_words
    for path in sorted(corpus.glob("*.md")):
        view = kp.document(str(path))
        assert len(view.abstract) == 1
        abstract = view.abstract[0]
        assert 1 <= len(abstract.text.split()) <= budget
        insight_texts = {i.text for i in view.insights}
        assert any(t in abstract.text for t in insight_texts)
        assert set(abstract.sources) <= {c.id for c in view.concepts} and abstract.sources


def test_short_budget_keeps_the_abstract_short(fresh_dsn: str, corpus: Path) -> None:
    with Pyramid.open(dsn=fresh_dsn, abstract_words=20) as kp:
        kp.ingest([corpus / "report.md"], force=True)
        abstract = kp.document(str(corpus / "report.md")).abstract[0].text
    assert len(abstract.split()) <= 20


def test_recollections_span_at_least_two_documents(kp: Pyramid) -> None:
    async def recollections() -> list[tuple[int, list[int | None]]]:
        async with kp.runtime.db.connection() as conn:
            cur = await conn.execute(
                "SELECT r.id, array_agg(c.document_id) FROM items r JOIN item_sources s ON s.item_id = r.id "
                "JOIN items c ON c.id = s.source_item_id WHERE r.level = 'recollection' AND r.distiller = 'extractive' "
                "GROUP BY r.id"
            )
            return await cur.fetchall()

    found = kp.run(recollections())
    assert found, "three biographies of the same shape share concepts"
    for _, documents in found:
        assert len(set(documents)) >= 2


def _extractive_recollections(kp: Pyramid) -> dict[int, tuple[str, bool, list[int]]]:
    from pyramid.store import corpus

    async def read() -> list[dict[str, object]]:
        async with kp.runtime.db.connection() as conn:
            return await corpus.recollections_by(conn, "extractive")

    return {int(r["id"]): (str(r["text"]), bool(r["stale"]), list(r["sources"])) for r in kp.run(read())}  # type: ignore[call-overload]


def test_an_unchanged_recollection_keeps_its_id_across_ingests(fresh_dsn: str, corpus: Path) -> None:
    """A recollection whose text and sources (by their trail) did not change keeps its id when its
    concepts are stored again under new ids: a saved [recollection 306] became 331 after a re-run."""
    people = [corpus / f"{stem}.md" for stem in PEOPLE]
    # On the default encoder: int8 encodes each text alone, so a re-ingest that batches the same
    # sentences differently stores the same vectors and the same recollections.
    with Pyramid.open(dsn=fresh_dsn, recollection_threshold=0.5) as kp:
        assert kp.ingest(people).ok
        first = _extractive_recollections(kp)
        assert first, "the biographies share a theme"
        for run in ({"force": True}, {"force": True, "distill": False}, {}):
            # --force stores every concept again; --no-distill leaves the recollections stale
            # (their concepts are gone) until the run after it distills the pages again.
            assert kp.ingest(people, **run).ok
            now = _extractive_recollections(kp)
            if run.get("distill") is False:
                assert sorted(now) == sorted(first) and all(stale for _, stale, _ in now.values())
                continue
            assert {i: (text, stale) for i, (text, stale, _) in now.items()} == {
                i: (text, False) for i, (text, _, _) in first.items()
            }, run
            # The same ids, resting on the concepts as stored now (new ids), not on deleted ones.
            assert all(not set(sources) & set(first[i][2]) and sources for i, (_, _, sources) in now.items())


def test_a_user_recollection_has_an_audit_trail_and_goes_stale(
    kp: Pyramid, corpus: Path, tmp_path: Path
) -> None:
    path = tmp_path / "note.md"
    path.write_text(article("Zora Quill", "Ann Quill", "Bob Quill", "pilot", "chess"))
    kp.ingest([path])
    item = kp.remember("Zora Quill and Alec Bly both like puzzles.", source=[str(path), "Alec_Bly.md"])
    assert item.distiller == "user"
    recollections = kp.document(str(path)).recollections
    assert [r.text for r in recollections if r.id == item.id] == [
        "Zora Quill and Alec Bly both like puzzles."
    ]
    assert not next(r for r in recollections if r.id == item.id).stale
    path.write_text(article("Zora Quill", "Ann Quill", "Bob Quill", "doctor", "chess"))
    kp.ingest([path])
    after = next(r for r in kp.document(str(path)).recollections if r.id == item.id)
    assert after.stale  # its document changed
    assert kp.stats().stale >= 1
    # expand names the documents of the trail, and one that is gone by the name it had.
    trail = kp.expand(item.id).documents
    assert sorted(d.document for d in trail) == ["Alec_Bly.md", "note.md"]
    path.unlink()
    kp.sync([tmp_path])
    [gone] = [d for d in kp.expand(item.id).documents if d.id is None]
    assert gone.document.endswith(f"({path})")
    assert gone.cite == f"[{gone.document}]"


def test_a_one_page_edit_keeps_the_other_insights(kp: Pyramid, tmp_path: Path) -> None:
    path = tmp_path / "book.md"
    topics = [
        ("The river town was built by hand", "Fishermen carried every stone from the quarry on the hill."),
        (
            "A railway reached the valley in 1881",
            "Coal trains ran twice a day to the steel mills of the coast.",
        ),
        ("The old mill burned down in a storm", "Farmers rebuilt it with timber from the northern forest."),
        ("Tourists discovered the lakes after the war", "Hotels and ski lifts replaced the grazing meadows."),
    ]
    sections = [f"## Chapter {n}\n\n{a}. {b}" for n, (a, b) in enumerate(topics, start=1)]  # one page each
    path.write_text("# Book\n\n" + "\n\n".join(sections) + "\n")
    with Pyramid.open(dsn=kp.runtime.db.url, page_chars=200, recollection_threshold=0.5) as small:
        small.ingest([path])
        before = {i.text: i.id for i in small.document(str(path)).insights}
        path.write_text(path.read_text().replace("The old mill burned down", "The old mill was flooded"))
        small.ingest([path])
        after = {i.text: i.id for i in small.document(str(path)).insights}
    kept = set(before) & set(after)
    assert len(before) == len(after) == 8
    assert len(kept) == 7  # "Farmers rebuilt it …" is the same sentence on a changed page:
    # it gets a new id (its page is new); the insights of pages 1, 2 and 4 keep theirs.
    assert [t for t in kept if before[t] != after[t]] == [
        "Farmers rebuilt it with timber from the northern forest."
    ]


def test_segmentation_units() -> None:
    assert split_sentences("Dr. Smith met Mr. Jones in the U.S. embassy. They talked.") == [(0, 44), (45, 57)]
    assert table_sentence(["Name", "Age"], ["Alice", "30"]) == "For Name Alice, Age is 30."
    found = segment(
        ["# Jane Doe\n\nShe was born in Paris. His work is known.\n\n```\nx = 1. Not prose.\n```\n"],
        subject="Jane Doe",
    )
    assert [c.text for c in found] == ["Jane Doe was born in Paris.", "Jane Doe's work is known."]
    assert normalize("The  Cat's hat!") == "the cat's hat"
