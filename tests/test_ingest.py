"""Ingest end to end on the real database: every format stored page-exact, bad input reported with a
reason while the rest is stored, unchanged files cost zero writes, changed files are replaced
atomically, feeds become one document per item."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import samples
from conftest import run_cli

from pyramid import Pyramid
from pyramid.embed import resolve_backend

GOOD = [
    "pdf",
    "pdf_table",
    "pptx",
    "xlsx",
    "docx",
    "epub",
    "html",
    "html_as_txt",
    "markdown",
    "long_text",
    "latin1",
    "rss",
    "atom",
    "csv",
    "json",
]
BAD = [
    "pdf_encrypted",
    "pdf_truncated",
    "pdf_images_only",
    "random_pdf",
    "random_docx",
    "random_txt",
    "empty",
    "blank",
    "png",
    "zip",
    "elf",
]


def _sql(kp: Pyramid, statement: str, params: dict | None = None) -> list[tuple]:
    async def run() -> list[tuple]:
        async with kp.runtime.db.connection() as conn:
            cur = await conn.execute(statement, params or {})
            return await cur.fetchall() if cur.description else []

    return kp.run(run())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    return samples.make_samples(folder, GOOD + BAD)


@pytest.fixture(scope="module")
def first_report(kp: Pyramid, corpus: dict[str, Path]):  # type: ignore[no-untyped-def]
    return kp.ingest([next(iter(corpus.values())).parent])


def test_every_good_file_is_stored_and_every_bad_one_reported(first_report, corpus: dict[str, Path]) -> None:
    failed = {Path(r.source).name: r.reason for r in first_report.failed}
    assert set(failed) == {corpus[name].name for name in BAD}
    for name, reason in failed.items():
        assert reason and "\n" not in reason and "Traceback" not in reason, (name, reason)
    assert (
        "encrypt" in failed[corpus["pdf_encrypted"].name].lower()
        or "password" in failed[corpus["pdf_encrypted"].name].lower()
    )
    assert "empty" in failed[corpus["empty"].name].lower()
    stored = {Path(r.source.split("#")[0]).name for r in first_report.added}
    assert stored == {corpus[name].name for name in GOOD}
    assert first_report.counts()["failed"] == len(BAD)


def test_pages_are_real_pages(kp: Pyramid, first_report, corpus: dict[str, Path]) -> None:
    pdf = kp.document(str(corpus["pdf"]))
    assert pdf.document.title == samples.PDF_TITLE
    assert pdf.document.pages == len(samples.PDF_PAGES) == len(pdf.pages)
    for number, (page, expected) in enumerate(zip(pdf.pages, samples.PDF_PAGES, strict=True), start=1):
        assert page.ordinal == number and page.pages == [number]
        assert expected.split(".")[0] in page.text
    slides = kp.document(str(corpus["pptx"]))
    assert slides.document.pages == len(samples.PPTX_SLIDES)
    sheets = kp.document(str(corpus["xlsx"]))
    assert sheets.document.pages == len(samples.XLSX_SHEETS)
    for page, sheet in zip(sheets.pages, samples.XLSX_SHEETS, strict=True):
        assert sheet in page.text


def test_every_page_has_an_embedding(kp: Pyramid, first_report) -> None:
    rows = _sql(
        kp, "SELECT count(*), count(embedding), min(vector_dims(embedding)) FROM items WHERE level = 'page'"
    )
    total, embedded, dims = rows[0]
    assert total > 0 and embedded == total and dims == 384


def test_feed_items_become_documents(kp: Pyramid, first_report, corpus: dict[str, Path]) -> None:
    feed = str(corpus["rss"])
    titles = sorted(d.title for d in kp.documents() if d.source.startswith(feed + "#"))
    assert titles == sorted(samples.RSS_ITEM_TITLES)


def test_failures_are_listed_with_their_reason(kp: Pyramid, first_report, corpus: dict[str, Path]) -> None:
    failed = {d.source: d for d in kp.documents(status="failed")}
    doc = failed[str(corpus["random_pdf"])]
    assert doc.error and doc.pages == 0


def _count_writes(kp: Pyramid) -> None:
    _sql(
        kp,
        """
        CREATE TABLE IF NOT EXISTS test_write_log (tbl text, op text);
        CREATE OR REPLACE FUNCTION test_log_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO test_write_log VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$;
        CREATE OR REPLACE TRIGGER test_log_documents AFTER INSERT OR UPDATE OR DELETE ON documents
            FOR EACH ROW EXECUTE FUNCTION test_log_write();
        CREATE OR REPLACE TRIGGER test_log_items AFTER INSERT OR UPDATE OR DELETE ON items
            FOR EACH ROW EXECUTE FUNCTION test_log_write();
        TRUNCATE test_write_log;
        """,
    )


def test_unchanged_files_cost_zero_writes(kp: Pyramid, first_report, corpus: dict[str, Path]) -> None:
    good = [corpus[name] for name in GOOD]
    _count_writes(kp)
    report = kp.ingest(good)
    assert report.ok
    assert report.counts()["unchanged"] == len(first_report.added)
    assert report.counts()["added"] == report.counts()["updated"] == 0
    assert _sql(kp, "SELECT count(*) FROM test_write_log") == [(0,)]


def test_changed_file_is_replaced_and_keeps_unchanged_pages(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    filler = "The harbor office keeps the tide tables for every pier. " * 4
    sections = [f"## Section {i}\n\nSection {i} says the tide rose {i} metres. {filler}" for i in range(1, 4)]
    path.write_text("\n\n".join(sections))
    with Pyramid.open(dsn=dsn, page_chars=300) as kp:  # one section per page
        kp.ingest([path])
        before = kp.document(str(path))
        assert len(before.pages) == 3
        sections[1] = f"## Section 2\n\nSection 2 now says the tide fell. {filler}"
        path.write_text("\n\n".join(sections))
        report = kp.ingest([path])
        assert report.counts()["updated"] == 1
        after = kp.document(str(path))
    assert "fell" in after.pages[1].text and "rose 2" not in after.pages[1].text
    assert after.pages[0].id == before.pages[0].id and after.pages[2].id == before.pages[2].id
    assert after.pages[1].id != before.pages[1].id


def test_a_reader_never_sees_a_mix_of_versions(kp: Pyramid, tmp_path: Path) -> None:
    import psycopg

    path = tmp_path / "versions.txt"

    def version(v: int) -> str:
        # Long enough to be split into several pages at paragraph boundaries.
        return "\n\n".join(
            f"Version {v} paragraph {i}. " + ("The harbor is calm today. " * 60) for i in range(8)
        )

    path.write_text(version(0))
    kp.ingest([path])
    doc_id = kp.document(str(path)).document.id
    seen: list[set[str]] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(kp.url, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT text FROM items WHERE document_id = %s AND level = 'page'", (doc_id,)
                ).fetchall()
                seen.append({t.split(" paragraph")[0].split()[-1] for (t,) in rows if "paragraph" in t})

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for v in range(1, 5):
            path.write_text(version(v))
            assert kp.ingest([path]).counts()["updated"] == 1
    finally:
        stop.set()
        reader.join()
    assert len(seen) > 5
    assert all(len(versions) == 1 for versions in seen), [v for v in seen if len(v) != 1][:3]


def test_a_failed_update_keeps_the_old_version(kp: Pyramid, tmp_path: Path) -> None:
    path = tmp_path / "keep.md"
    path.write_text("# Keep\n\nThe lighthouse keeper lives on the island.")
    kp.ingest([path])
    path.write_bytes(b"")  # now broken
    report = kp.ingest([path])
    assert report.counts()["failed"] == 1
    view = kp.document(str(path))
    assert view.document.status == "failed" and view.document.error
    assert "lighthouse keeper" in view.pages[0].text  # the stored version is still there
    path.write_text("# Keep\n\nThe lighthouse keeper moved to the mainland.")
    assert kp.ingest([path]).counts()["updated"] == 1
    assert kp.document(str(path)).document.status == "ready"


def test_feed_item_removed_from_feed_is_removed(kp: Pyramid, tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    feed.write_text(samples.RSS_DOC)
    kp.ingest([feed])
    first_item = samples.RSS_DOC.index("<item>")
    end = samples.RSS_DOC.index("</item>") + len("</item>")
    feed.write_text(samples.RSS_DOC[:first_item] + samples.RSS_DOC[end:])
    report = kp.ingest([feed])
    assert report.counts()["removed"] == 1
    assert report.counts()["unchanged"] == len(samples.RSS_ITEM_TITLES) - 1
    titles = [d.title for d in kp.documents() if d.source.startswith(str(feed) + "#")]
    assert len(titles) == len(samples.RSS_ITEM_TITLES) - 1


def test_include_exclude_and_hidden(kp: Pyramid, tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "a.md").write_text("# A\n\nAlpha text about boats.")
    (tmp_path / "keep" / "b.txt").write_text("Beta text about birds.")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "c.md").write_text("# C\n\nGamma text.")
    (tmp_path / ".hidden.md").write_text("# Hidden\n\nSecret.")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.md").write_text("# Git\n\nnot a document")
    report = kp.ingest([tmp_path], include=["*.md"], exclude=["drafts/**"], dry_run=True)
    assert [Path(r.source).name for r in report.results] == ["a.md"]
    assert report.dry_run


def test_file_over_the_size_cap_is_refused(dsn: str, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("The sea is wide. " * 70_000)  # ~1.2 MB
    with Pyramid.open(dsn=dsn, max_file_mb=1) as kp:
        report = kp.ingest([big])
    assert report.counts()["failed"] == 1
    assert "MB" in (report.failed[0].reason or "") or "bytes" in (report.failed[0].reason or "")


@pytest.mark.anyio
async def test_async_twin(dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "async.md"
    path.write_text("# Async\n\nAn async ingest stores this page.")
    async with await Pyramid.aopen(dsn=dsn) as kp:
        report = await kp.aingest([path])
        assert report.counts()["added"] == 1
        docs = await kp.adocuments()
        assert str(path) in {d.source for d in docs}


def test_cli_ingest_ls_show(dsn: str, tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("# Tides\n\nThe spring tide comes twice a month.")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(samples.random_bytes(2048))
    done = run_cli("ingest", str(tmp_path), "--json", dsn=dsn)
    assert done.returncode == 1, done.stderr  # some failed, the rest stored
    summary = json.loads(done.stdout)
    assert summary["counts"]["added"] == 1 and summary["counts"]["failed"] == 1
    # The run says which encoder the default (auto) chose here, with its pages/s: int8 ONNX on a
    # CPU, torch on CUDA.
    encoder = summary["encoder"]
    backend, precision, _ = resolve_backend("auto", None, None)
    assert (encoder["backend"], encoder["precision"], encoder["pages"]) == (backend, precision, 1)
    assert encoder["pages_per_s"] > 0
    assert summary["results"][0]["reason"] is None or "bad.pdf" in json.dumps(summary)
    assert "Traceback" not in done.stderr
    listed = json.loads(run_cli("ls", "--json", dsn=dsn).stdout)
    assert {Path(d["source"]).name for d in listed} >= {"good.md", "bad.pdf"}
    shown = run_cli("show", "good.md", dsn=dsn)
    assert shown.returncode == 0 and "spring tide" in shown.stdout
    shown_json = json.loads(run_cli("show", str(good), "--json", dsn=dsn).stdout)
    assert shown_json["document"]["title"] == "Tides" and len(shown_json["pages"]) == 1
    again = run_cli("ingest", str(good), dsn=dsn)
    assert again.returncode == 0 and "unchanged" in again.stdout
    missing = run_cli("show", "no-such-doc.md", dsn=dsn)
    assert missing.returncode == 2 and missing.stderr.startswith("Error:")


def test_cli_ingest_of_missing_path_fails_cleanly(dsn: str) -> None:
    done = run_cli("ingest", "/no/such/folder", dsn=dsn)
    assert done.returncode == 1
    assert "/no/such/folder" in done.stdout and "does not exist" in done.stdout


def test_pages_only_then_distilled_later(fresh_dsn: str, tmp_path: Path) -> None:
    path = tmp_path / "later.md"
    path.write_text(
        "# Later\n\nThe ferry leaves at seven. The bakery opens at six. The pier has twelve lamps."
    )
    with Pyramid.open(dsn=fresh_dsn) as kp:
        first = kp.ingest([path], distill=False)
        assert first.counts()["added"] == 1
        view = kp.document(str(path))
        assert view.document.status == "converted" and view.pages and not view.insights
        page_id = view.pages[0].id
        assert kp.ingest([path], distill=False).counts()["unchanged"] == 1  # pages-only: nothing to do
        second = kp.ingest([path])  # now distilled, pages kept as they are
        assert second.counts()["distilled"] == 1
        assert second.counts()["updated"] == 0  # the file did not change
        view = kp.document(str(path))
        assert view.document.status == "ready" and view.insights and view.pages[0].id == page_id
        assert kp.ingest([path]).counts()["unchanged"] == 1


def test_a_failing_encoder_stops_the_ingest_with_its_error(fresh_dsn: str, tmp_path: Path) -> None:
    # The encoder is one stage of the pipeline: when it fails, the ingest fails with its error at
    # once instead of leaving the other stages waiting on its queue.
    (tmp_path / "a.md").write_text("# A\n\nThe encoder will fail on this page.\n")

    def broken(texts: object) -> object:
        raise RuntimeError("the encoder broke")

    with Pyramid.open(dsn=fresh_dsn) as kp:
        kp.runtime.embedder.encode_documents = broken  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="the encoder broke"):
            kp.ingest([tmp_path])
        assert kp.documents() == []
