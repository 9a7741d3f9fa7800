"""Conversion: real formats from content, real pages, clean markdown, one clear error per bad file."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pyramid.convert import ConvertedDocument, convert_file, detect_format, file_sha256, split_pages
from pyramid.convert.detect import HEAD_BYTES
from pyramid.errors import ConversionError
from tests import samples

pytestmark = pytest.mark.unit  # no PostgreSQL, no model: the fast layer

# A leftover tag or comment: "<b>", "</p>", "<br/>", "<!-- … -->", "<?xml", "<![CDATA[".
TAG = re.compile(r"</?[A-Za-z][\w:-]*(\s[^>]*)?/?>|<!--|<\?xml|<!\[CDATA\[")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return samples.make_samples(tmp_path_factory.mktemp("samples"))


def one(path: Path, **options: int) -> ConvertedDocument:
    docs = convert_file(path, **options)
    assert len(docs) == 1
    return docs[0]


def assert_clean(doc: ConvertedDocument) -> None:
    assert doc.pages and all(page.strip() for page in doc.pages)
    for page in doc.pages:
        assert not TAG.search(page), page
        assert "\x00" not in page and "\n\n\n" not in page
        assert page == page.strip()


# --- formats and real pages --------------------------------------------------------------------


def test_pdf_keeps_its_pages(files: dict[str, Path]) -> None:
    doc = one(files["pdf"])
    assert (doc.format, doc.paged, doc.title) == ("pdf", True, samples.PDF_TITLE)
    assert len(doc.pages) == len(samples.PDF_PAGES)
    for page, expected in zip(doc.pages, samples.PDF_PAGES, strict=True):
        assert " ".join(page.split()) == expected
    assert doc.source == doc.path == str(files["pdf"].resolve())
    assert doc.sha256 == hashlib.sha256(files["pdf"].read_bytes()).hexdigest() == file_sha256(files["pdf"])
    assert_clean(doc)


def test_pdf_title_falls_back_to_first_line(files: dict[str, Path]) -> None:
    doc = one(files["pdf_untitled"])
    assert doc.title == "Mooring Fees 2031"
    assert len(doc.pages) == 2 and doc.pages[1] == "Page two."


def test_pdf_table_page_becomes_markdown_table(files: dict[str, Path]) -> None:
    doc = one(files["pdf_table"])
    assert len(doc.pages) == 2 and "Berth register" in doc.pages[0]
    table = doc.pages[1]
    assert "Vessel" not in doc.pages[0]
    for row in samples.PDF_TABLE_ROWS:
        line = next(line for line in table.split("\n") if row[0] in line)
        assert [cell.strip() for cell in line.strip("|").split("|")] == row


def test_pdf_layout_artefacts_do_not_split_sentences(files: dict[str, Path]) -> None:
    page = one(files["pdf_wrapped"]).pages[0]
    assert " ".join(page.split()) == samples.PDF_WRAPPED
    assert "  " not in page  # justified lines: no runs of spaces
    # each line was its own pdfminer box; only real sentence ends may stay paragraph breaks
    for gap in page.split("\n\n")[:-1]:
        assert gap.rstrip()[-1] in ".!?:", page


def test_blank_pages_and_slides_keep_their_numbers(tmp_path: Path) -> None:
    from fpdf import FPDF
    from pptx import Presentation

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in ["Front page text.", None, "Back page text."]:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    pdf.output(str(tmp_path / "gap.pdf"))
    pages = one(tmp_path / "gap.pdf").pages
    assert pages == ["Front page text.", "*(page 2 has no extractable text)*", "Back page text."]

    deck = Presentation()
    for title in ["Opening", None, "Closing"]:
        slide = deck.slides.add_slide(deck.slide_layouts[5 if title else 6])  # title only / blank
        if title:
            slide.shapes.title.text = title
    deck.save(str(tmp_path / "gap.pptx"))
    assert one(tmp_path / "gap.pptx").pages == ["# Opening", "*(slide 2 has no text)*", "# Closing"]


def test_pptx_one_page_per_slide(files: dict[str, Path]) -> None:
    doc = one(files["pptx"])
    assert (doc.format, doc.paged, doc.title) == ("pptx", True, samples.PPTX_SLIDES[0][0])
    assert len(doc.pages) == len(samples.PPTX_SLIDES)
    for number, (title, body) in enumerate(samples.PPTX_SLIDES):
        assert title in doc.pages[number] and body in doc.pages[number]
        others = [p for i, p in enumerate(doc.pages) if i != number]
        assert not any(body in page for page in others)
    assert "| Brass | 900 |" in doc.pages[1]
    assert samples.PPTX_NOTE in doc.pages[2]
    assert_clean(doc)


def test_xlsx_one_page_per_sheet(files: dict[str, Path]) -> None:
    doc = one(files["xlsx"])
    assert (doc.format, doc.paged) == ("xlsx", True)
    assert len(doc.pages) == len(samples.XLSX_SHEETS)
    for page, (name, rows) in zip(doc.pages, samples.XLSX_SHEETS.items(), strict=True):
        assert page.startswith(f"## {name}")
        for row in rows:
            assert "| " + " | ".join(str(cell) for cell in row) + " |" in page
    assert doc.title == "harbor-log"  # no title in the workbook's properties: the file stem
    assert_clean(doc)


def test_docx(files: dict[str, Path]) -> None:
    doc = one(files["docx"])
    assert (doc.format, doc.paged, doc.title) == ("docx", False, samples.DOCX_TITLE)
    text = "\n".join(doc.pages)
    assert all(paragraph in text for paragraph in samples.DOCX_PARAGRAPHS)
    assert "## Winter schedule" in text
    # Word tables have no header cells: the first row becomes the header, no empty row above it
    assert "| Departure | Arrival |\n| --- | --- |\n| 07:00 | 07:40 |" in text
    assert_clean(doc)


def test_html_scripts_styles_comments_are_gone(files: dict[str, Path]) -> None:
    doc = one(files["html"])
    assert (doc.format, doc.title) == ("html", samples.HTML_TITLE)
    text = "\n".join(doc.pages)
    assert "**rye bread**" in text and "| Rye | 3 coins |" in text
    assert "tracking" not in text and "color" not in text and "navigation" not in text
    assert_clean(doc)


@pytest.mark.parametrize(("name", "real"), [("html_as_txt", "html"), ("rss_as_txt", "rss"), ("atom", "atom")])
def test_content_beats_extension(files: dict[str, Path], name: str, real: str) -> None:
    path = files[name]
    assert detect_format(path, path.read_bytes()[:HEAD_BYTES]) == real
    docs = convert_file(path)
    assert {doc.format for doc in docs} == {real}
    for doc in docs:
        assert_clean(doc)


def test_detect_format_sniffs_magic_bytes(files: dict[str, Path]) -> None:
    def detect(name: str) -> str:
        return detect_format(files[name], files[name].read_bytes()[:HEAD_BYTES])

    expected = {
        "pdf": "pdf", "pptx": "pptx", "xlsx": "xlsx", "docx": "docx", "epub": "epub", "html": "html",
        "markdown": "markdown", "long_text": "text", "csv": "csv", "json": "json", "rss": "rss",
        "png": "image", "png_as_pdf": "image", "zip": "zip", "elf": "executable", "random_pdf": "binary",
    }  # fmt: skip
    assert {name: detect(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("name", "head", "label"),
    [
        ("a.md", b"MZ Corp annual report\n", "markdown"),
        ("b.md", b"# Note\n\nEvery PDF starts with %PDF-1.7.\n", "markdown"),
        ("c.txt", b"ID3 tags hold the song title.\n", "text"),
        ("d.txt", b"<b>Note:</b> buy rope\nand tar\n", "text"),
        ("e", b"<p>Fragment</p>", "html"),
        ("f.pdf", b"garbage line\n%PDF-1.4\n", "pdf"),
        ("g.xml", b"<?xml version='1.0'?><config/>", "xml"),
        ("h.txt", "Größe\n".encode("utf-16"), "text"),
        ("i.md", b'<div align="center">logo</div>\n\n# Readme\n', "markdown"),
    ],
)
def test_detect_format_is_not_fooled_by_text(name: str, head: bytes, label: str) -> None:
    assert detect_format(Path(name), head) == label


def test_markdown_title_and_headings(files: dict[str, Path]) -> None:
    doc = one(files["markdown"])
    assert (doc.format, doc.paged, doc.title) == ("markdown", False, samples.MARKDOWN_TITLE)
    assert doc.pages == [samples.MARKDOWN_DOC.strip()]  # fits one page: unchanged


def test_markdown_splits_at_headings_and_code_stays_whole(files: dict[str, Path]) -> None:
    doc = one(files["markdown"], max_page_chars=160)
    assert all(len(page) <= 160 for page in doc.pages)
    assert doc.pages[0].startswith("# Harbor Handbook")
    starts = [page.split("\n", 1)[0] for page in doc.pages]
    assert "## Mooring" in starts and "## Fuel" in starts and "Setext heading" in starts
    code = next(page for page in doc.pages if "```" in page)
    assert code.count("```") == 2 and "# this line is code, not a heading" in code
    assert _words("\n".join(doc.pages)) == _words(samples.MARKDOWN_DOC)


def test_front_matter_title(tmp_path: Path) -> None:
    path = tmp_path / "note.md"
    path.write_text(
        "---\ntitle: Tide Clock Manual\ntags: [harbor]\n---\n\n# Overview\n\nWind the clock weekly.\n"
    )
    doc = one(path)
    assert doc.title == "Tide Clock Manual"
    assert "---" not in doc.pages[0] and "tags: [harbor]" in doc.pages[0]


def test_latin1_text_is_decoded(files: dict[str, Path]) -> None:
    doc = one(files["latin1"])
    assert doc.format == "text"
    assert "\n\n".join(doc.pages) == samples.LATIN1_TEXT.strip()


def test_utf8_with_a_damaged_byte_stays_utf8(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes("Größe über Straße, Zoë und André. ".encode() * 20 + b"\xff" + b"Ende.")
    page = one(path).pages[0]
    assert page.startswith("Größe über Straße, Zoë und André.") and page.endswith("André. Ende.")


def test_nul_bytes_are_stripped(files: dict[str, Path]) -> None:
    assert one(files["nul_text"]).pages == ["Line one has a stray NUL byte.\n\nLine two is clean."]


def test_raw_html_inside_markdown_is_stripped_but_code_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "readme.md"
    path.write_text(
        '<div align="center"><img src="logo.png"></div>\n\n# Tide Clock\n\n<!-- hidden note -->\n'
        "Line one<br>line two, see <https://example.org/clock>.\n\nUse `<div>` for boxes.\n\n"
        "```html\n<p>kept as code</p>\n```\n"
    )
    page = one(path).pages[0]
    assert "<img" not in page and "<br>" not in page and "hidden note" not in page
    assert "https://example.org/clock" in page and "<https" not in page
    assert "`<div>`" in page and "<p>kept as code</p>" in page


def test_epub_csv_json(files: dict[str, Path]) -> None:
    epub = one(files["epub"])
    assert (epub.format, epub.title) == ("epub", samples.EPUB_TITLE)
    assert "The storm broke the old pier" in epub.pages[0] and "rebuilt it with oak" in epub.pages[0]
    csv = one(files["csv"])
    assert csv.format == "csv" and "| Petrel | Tomas Reed | B2 |" in csv.pages[0]
    data = one(files["json"])
    assert (data.format, data.title) == ("json", "harbor") and "North Isle" in data.pages[0]


# --- feeds -------------------------------------------------------------------------------------


def test_rss_one_document_per_item(files: dict[str, Path]) -> None:
    docs = convert_file(files["rss"])
    base = str(files["rss"].resolve())
    assert [doc.title for doc in docs] == samples.RSS_ITEM_TITLES
    # guid, else link, else a key made from the item's title (stable when other items come and go)
    assert [doc.source for doc in docs[:2]] == [
        f"{base}#harbor-news-101",
        f"{base}#https://example.org/harbor/crabs",
    ]
    assert docs[2].source.startswith(f"{base}#item-")
    shorter = samples.RSS_DOC.replace(
        samples.RSS_DOC[samples.RSS_DOC.index("<item>") : samples.RSS_DOC.index("</item>") + 7], ""
    )
    trimmed = files["rss"].parent / "trimmed.rss"
    trimmed.write_text(shorter)
    assert convert_file(trimmed)[-1].source.split("#")[1] == docs[2].source.split("#")[1]
    assert all(doc.path == base and doc.format == "rss" and not doc.paged for doc in docs)
    first, second, third = docs
    assert first.meta["link"] == "https://example.org/harbor/lamps" and first.meta["author"] == "Ines Marlow"
    assert first.meta["published"].startswith("Tue, 04 Mar 2031") and first.meta["feed"] == "Harbor News"
    assert "All **twelve** pier lamps shine again." in first.pages[0]
    assert "*the first of April*" in second.pages[0] and "Ten pots per boat." in second.pages[0]
    assert "The ferry leaves at **seven**" in third.pages[0]  # content:encoded wins over description
    assert len({doc.sha256 for doc in docs}) == 3
    assert first.sha256 == hashlib.sha256("\n\n".join(first.pages).encode()).hexdigest()
    for doc in docs:
        assert_clean(doc)


def test_atom_entries(files: dict[str, Path]) -> None:
    docs = convert_file(files["atom"])
    assert [doc.title for doc in docs] == samples.ATOM_ENTRY_TITLES
    assert docs[0].source.endswith("#urn:uuid:entry-gulls") and docs[0].meta["author"] == "Aya Fenwick"
    assert "We counted **212 gulls** on the cliffs." in docs[0].pages[0]
    assert "*new slate*" in docs[1].pages[0] and "Rain no longer drips" in docs[1].pages[0]
    for doc in docs:
        assert_clean(doc)


def test_repeated_guids_stay_unique(tmp_path: Path) -> None:
    item = "<item><title>Same {0}</title><guid>dup</guid><description>Text {0}.</description></item>"
    path = tmp_path / "dup.rss"
    path.write_text(f"<rss><channel><title>T</title>{item.format(1)}{item.format(2)}</channel></rss>")
    assert len({doc.source for doc in convert_file(path)}) == 2


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty", "empty file"),
        ("blank", "only whitespace"),
        ("random_pdf", "not a valid PDF file"),
        ("random_docx", "not a valid DOCX file"),
        ("random_txt", "binary data"),
        ("png", "an image"),
        ("png_as_pdf", "not a valid PDF file: the content is an image"),
        ("zip", "zip archive"),
        ("elf", "executable"),
        ("pdf_truncated", "truncated PDF"),
        ("pdf_encrypted", "encrypted PDF: it is password-protected"),
        ("pdf_images_only", "no extractable text"),
    ],
)
def test_bad_input_names_file_and_reason(files: dict[str, Path], name: str, reason: str) -> None:
    with pytest.raises(ConversionError) as caught:
        convert_file(files[name])
    error = caught.value
    assert error.path == str(files[name].resolve())
    assert reason in error.reason and "\n" not in str(error)
    assert str(error).startswith(error.path)


def test_scanned_pdf_says_so(files: dict[str, Path]) -> None:
    with pytest.raises(ConversionError, match=r"scanned PDF"):
        convert_file(files["pdf_images_only"])


def test_over_size_cap(files: dict[str, Path]) -> None:
    size = files["long_text"].stat().st_size
    with pytest.raises(ConversionError, match=r"file is \d+(\.\d)? KB, over the 1 KB limit"):
        convert_file(files["long_text"], max_file_bytes=1024)
    assert convert_file(files["long_text"], max_file_bytes=size)


def test_undecodable_text(tmp_path: Path) -> None:
    import random

    rng = random.Random(3)
    path = tmp_path / "garbage.txt"
    # No NUL or C0 control bytes, so it passes the binary sniff; no text encoding reads it either.
    path.write_bytes(bytes(rng.randrange(32, 256) for _ in range(3000)))
    with pytest.raises(ConversionError, match="not text: the bytes are neither UTF-8 nor any known"):
        convert_file(path)


def test_damaged_docx(tmp_path: Path, files: dict[str, Path]) -> None:
    data = files["docx"].read_bytes()
    path = tmp_path / "cut.docx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConversionError, match="DOCX"):
        convert_file(path)


def test_malformed_feed(tmp_path: Path) -> None:
    path = tmp_path / "broken.rss"
    path.write_text("<rss><channel><item><title>Unclosed</item></channel>")
    with pytest.raises(ConversionError, match="malformed feed XML"):
        convert_file(path)


def test_missing_file_directory_and_fifo(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="file not found"):
        convert_file(tmp_path / "nope.md")
    with pytest.raises(ConversionError, match="is a directory"):
        convert_file(tmp_path)
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    # A FIFO with no writer would block a plain open() forever.
    with pytest.raises(ConversionError, match="named pipe"):
        convert_file(fifo)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.md"
    path.write_text("# Secret\n")
    path.chmod(0)
    with pytest.raises(ConversionError, match="permission denied"):
        convert_file(path)


# --- splitting ---------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]+", text)


SENTENCE = re.compile(r"[^.!?]+[.!?]")


@pytest.mark.parametrize("cap", [300, 1000, 4000])
def test_long_text_splits_between_sentences(files: dict[str, Path], cap: int) -> None:
    doc = one(files["long_text"], max_page_chars=cap)
    source = files["long_text"].read_text()
    assert (doc.format, doc.paged, doc.title) == ("text", False, "logbook")
    assert len(doc.pages) > len(source) // cap
    assert all(len(page) <= cap for page in doc.pages)
    # Every page ends at the end of a sentence and starts with a capital: no sentence is cut.
    assert all(page.endswith(".") and page[0].isupper() for page in doc.pages)
    sentences = {" ".join(s.split()) for s in SENTENCE.findall(source)}
    for page in doc.pages:
        assert all(" ".join(s.split()) in sentences for s in SENTENCE.findall(page))
    assert _words("\n".join(doc.pages)) == _words(source)
    # Pages are packed: two neighbours never fit together under the cap.
    assert all(len(a) + len(b) + 2 > cap for a, b in zip(doc.pages, doc.pages[1:], strict=False))


def test_only_an_overlong_sentence_is_cut_at_words() -> None:
    long_sentence = "Many " + " ".join(f"word{i}" for i in range(200)) + "."
    text = f"# Title\n\nShort one. {long_sentence} Short two."
    pages = split_pages(text, 120)
    assert all(len(page) <= 120 for page in pages)
    # the over-long sentence starts right after "Short one." and fills pages to the cap
    assert pages[0].startswith("# Title\n\nShort one. Many word0")
    assert all(len(page) > 110 for page in pages[:-1])
    assert pages[-1].endswith("word199. Short two.")
    assert _words("\n".join(pages)) == _words(text)  # a word cut in two would show up here


def test_unbreakable_token_is_hard_cut() -> None:
    pages = split_pages("x" * 250, 100)
    assert [len(page) for page in pages] == [100, 100, 50]


def test_big_table_repeats_its_header() -> None:
    rows = "\n".join(f"| boat {i} | berth {i} |" for i in range(100))
    pages = split_pages(f"## Boats\n\n| Boat | Berth |\n| --- | --- |\n{rows}", 400)
    assert len(pages) > 3 and all(len(page) <= 400 for page in pages)
    for page in pages[1:]:
        assert page.startswith("| Boat | Berth |\n| --- | --- |\n| boat ")
    body = [line for page in pages for line in page.split("\n") if line.startswith("| boat ")]
    assert body == rows.split("\n")


def test_big_code_block_is_refenced() -> None:
    code = "\n".join(f"print({i})" for i in range(200))
    pages = split_pages(f"Intro text.\n\n```python\n{code}\n```\n\nOutro text.", 300)
    for page in pages:
        assert len(page) <= 300 and page.count("```") % 2 == 0
    lines = [line for page in pages for line in page.split("\n") if line.startswith("print(")]
    assert lines == code.split("\n")


def test_heading_is_not_left_alone_at_a_page_bottom() -> None:
    first = "First section sentence. " * 6
    second = "Second section sentence. " * 12
    pages = split_pages(f"# A\n\n{first.strip()}\n\n## B\n\n{second.strip()}", 320)
    assert not any(page.endswith("## B") for page in pages)
    assert any(page.startswith("## B") for page in pages)


def test_abbreviations_do_not_end_sentences() -> None:
    text = "Dr. Reed met Mr. Castell at 3 p.m. on the pier. " * 20
    pages = split_pages(text, 200)
    assert all(page.endswith("on the pier.") and page.startswith("Dr. Reed") for page in pages)


# --- concurrency and start-up ------------------------------------------------------------------


def test_thread_safe(files: dict[str, Path]) -> None:
    names = ["pdf", "pptx", "xlsx", "docx", "html", "rss", "markdown", "long_text", "epub"]
    expected = {name: convert_file(files[name]) for name in names}
    results: dict[tuple[int, str], list[ConvertedDocument]] = {}

    def work(worker: int) -> None:
        for name in names:
            results[(worker, name)] = convert_file(files[name])

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(results[(w, name)] == expected[name] for w in range(4) for name in names)


def test_first_conversions_in_parallel_threads(files: dict[str, Path]) -> None:
    """A fresh interpreter whose first conversions run at once: MarkItDown's circular package
    imports used to deadlock (``_DeadlockError``) when two threads imported it at the same time."""
    names = ["pdf", "docx", "pptx", "xlsx", "html", "rss", "epub", "csv", "latin1"]
    code = (
        "import sys, threading\n"
        "from pyramid.convert import convert_file\n"
        "errors = []\n"
        "def work(path):\n"
        "    try:\n"
        "        convert_file(path)\n"
        "    except Exception as exc:\n"
        "        errors.append(repr(exc))\n"
        "threads = [threading.Thread(target=work, args=(p,)) for p in sys.argv[1:]]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(errors)\n"
    )
    args = [str(files[name]) for name in names]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_convert_and_discover_stays_light() -> None:
    code = (
        "import sys, pyramid.convert, pyramid.discover\n"
        "heavy = [m for m in ('markitdown', 'pdfminer', 'pdfplumber', 'pandas', 'charset_normalizer',"
        " 'bs4', 'magika', 'defusedxml') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_example_corpus_converts() -> None:
    from pyramid.discover import discover

    root = Path(__file__).resolve().parent.parent / "examples" / "docs"
    found = discover([root])
    assert found.problems == [] and len(found.files) == 8
    assert sum(path.stat().st_size for path in found.files) < 500 * 1024
    docs = [doc for path in found.files for doc in convert_file(path)]
    pages = {doc.format: len(doc.pages) for doc in docs if doc.paged}
    assert pages == {"pdf": 4, "pptx": 5, "xlsx": 3}
    formats = sorted({doc.format for doc in docs})
    assert formats == ["docx", "html", "markdown", "pdf", "pptx", "rss", "text", "xlsx"]
    assert sum(doc.format == "rss" for doc in docs) == 4
    for doc in docs:
        assert_clean(doc)
