"""Sample documents of every format the converter meets, written into a folder on demand.

Every builder writes one file and returns its path; the constants next to it are what a test may
assert about the result (page texts, titles, item titles). All text here was written for these
tests. ``make_samples(folder)`` writes the whole set and returns ``{name: path}``.

PDF and DOCX builders need the dev extras ``fpdf2``, ``pypdf`` and ``python-docx``; PPTX and XLSX
use python-pptx and openpyxl, which MarkItDown already depends on.
"""

from __future__ import annotations

import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

# --- PDF ---------------------------------------------------------------------------------------
PDF_TITLE = "Harbor Survey Report"
PDF_PAGES = [
    "Harbor survey, first page. The north pier has twelve mooring posts and a new fuel dock.",
    "Second page findings. Divers counted forty crabs under the east breakwater in April.",
    "Third page summary. The harbor master plans to dredge the channel before the autumn storms.",
]
PDF_TABLE_ROWS = [
    ["Vessel", "Length", "Berth", "Owner"],
    ["Gull", "12 m", "A4", "Ines Marlow"],
    ["Petrel", "9 m", "B2", "Tomas Reed"],
    ["Heron", "15 m", "C1", "Aya Fenwick"],
    ["Osprey", "11 m", "A7", "Bram Castell"],
]
PDF_PASSWORD = "tide-table"


def _pdf(pages: list[str], *, title: str | None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def write_pdf(folder: Path, name: str = "survey.pdf") -> Path:
    """Three pages, one marker sentence pair per page, a Title in the metadata."""
    path = folder / name
    path.write_bytes(_pdf(PDF_PAGES, title=PDF_TITLE))
    return path


def write_pdf_untitled(folder: Path, name: str = "untitled.pdf") -> Path:
    """No metadata title: the title must come from the first line of page 1."""
    path = folder / name
    path.write_bytes(
        _pdf(["Mooring Fees 2031\n\nA berth costs nine coins a night.", "Page two."], title=None)
    )
    return path


def write_pdf_table(folder: Path, name: str = "berths.pdf") -> Path:
    """Page 1 is prose, page 2 a ruled table (MarkItDown's form/table extraction path)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Berth Register")
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Berth register. The next page lists every vessel with its berth.")
    pdf.add_page()
    with pdf.table() as table:
        for cells in PDF_TABLE_ROWS:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    path = folder / name
    path.write_bytes(bytes(pdf.output()))
    return path


PDF_WRAPPED = (
    "The harbor survey of the north pier took three weeks in April and involved divers, a crane "
    "barge and a crew of nine, who measured every mooring post, checked the fuel dock for leaks and "
    "photographed the breakwater stones from the water line down to the sea floor, where the crabs "
    "live in large numbers. The second paragraph starts here and is short."
)


def write_pdf_wrapped(folder: Path, name: str = "wrapped.pdf") -> Path:
    """Justified, loosely spaced lines: pdfminer puts each line in its own box, with space runs."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 7, PDF_WRAPPED, align="J")
    path = folder / name
    path.write_bytes(bytes(pdf.output()))
    return path


def write_pdf_encrypted(folder: Path, name: str = "locked.pdf") -> Path:
    from pypdf import PdfWriter

    source = write_pdf(folder, "_plain_for_lock.pdf")
    writer = PdfWriter(clone_from=source)
    writer.encrypt(PDF_PASSWORD)
    path = folder / name
    with path.open("wb") as handle:
        writer.write(handle)
    source.unlink()
    return path


def write_pdf_truncated(folder: Path, name: str = "truncated.pdf") -> Path:
    data = _pdf(PDF_PAGES, title=PDF_TITLE)
    path = folder / name
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def write_pdf_images_only(folder: Path, name: str = "scan.pdf") -> Path:
    """Drawn shapes and no text at all: what a scanned document looks like to a text extractor."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 120, 80, style="F")
        pdf.ellipse(40, 120, 60, 40, style="D")
    path = folder / name
    path.write_bytes(bytes(pdf.output()))
    return path


# --- PPTX --------------------------------------------------------------------------------------
PPTX_SLIDES = [
    ("Lighthouse Restoration", "The lamp room gets new brass fittings in May."),
    ("Budget", "Volunteers raised four thousand coins at the spring fair."),
    ("Timeline", "Painting starts after the gulls leave their nests."),
]
PPTX_NOTE = "Remember to thank the ferry crew for the free crossing."


def write_pptx(folder: Path, name: str = "lighthouse.pptx") -> Path:
    """Three titled slides; slide 2 also has a table, slide 3 speaker notes."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    layout = deck.slide_layouts[1]  # title and content
    for index, (title, body) in enumerate(PPTX_SLIDES):
        slide = deck.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if index == 1:
            shape = slide.shapes.add_table(3, 2, Inches(1), Inches(4.5), Inches(6), Inches(1.2))
            for r, (item, cost) in enumerate([("Item", "Cost"), ("Brass", "900"), ("Paint", "350")]):
                shape.table.cell(r, 0).text = item
                shape.table.cell(r, 1).text = cost
        if index == 2:
            slide.notes_slide.notes_text_frame.text = PPTX_NOTE
    path = folder / name
    deck.save(str(path))
    return path


# --- XLSX --------------------------------------------------------------------------------------
XLSX_SHEETS = {
    "Tides": [
        ["Day", "High water", "Low water"],
        ["Monday", "06:10", "12:25"],
        ["Tuesday", "06:55", "13:08"],
    ],
    "Catch": [["Species", "Kilograms"], ["Mackerel", 140], ["Herring", 95]],
    "Crew": [["Name", "Role"], ["Ines Marlow", "Skipper"], ["Tomas Reed", "Deckhand"]],
}


def write_xlsx(folder: Path, name: str = "harbor-log.xlsx") -> Path:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for sheet_name, rows in XLSX_SHEETS.items():
        sheet = book.create_sheet(sheet_name)
        for row in rows:
            sheet.append(row)
    path = folder / name
    book.save(path)
    return path


# --- DOCX --------------------------------------------------------------------------------------
DOCX_TITLE = "Ferry Timetable Notes"
DOCX_PARAGRAPHS = [
    "The morning ferry leaves the island at seven and reaches the mainland forty minutes later.",
    "On stormy days the harbor master may cancel the crossing without notice.",
]


def write_docx(folder: Path, name: str = "ferry.docx") -> Path:
    import docx

    document = docx.Document()
    document.add_heading(DOCX_TITLE, level=1)
    document.add_paragraph(DOCX_PARAGRAPHS[0])
    document.add_heading("Winter schedule", level=2)
    document.add_paragraph(DOCX_PARAGRAPHS[1])
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Departure", "Arrival"
    table.cell(1, 0).text, table.cell(1, 1).text = "07:00", "07:40"
    path = folder / name
    document.save(str(path))
    return path


# --- HTML and markdown -------------------------------------------------------------------------
HTML_TITLE = "Island Bakery"
HTML_DOC = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Island Bakery</title>
<style>body { color: #333; }</style><script>var tracking = "<b>not text</b>";</script></head>
<body><!-- navigation removed -->
<h1>Island Bakery</h1>
<p>The bakery sells <b>rye bread</b> and <i>seed rolls</i> every morning.</p>
<h2>Opening hours</h2>
<ul><li>Weekdays from six to noon.</li><li>Closed on Sundays.</li></ul>
<table><tr><th>Loaf</th><th>Price</th></tr><tr><td>Rye</td><td>3 coins</td></tr></table>
<p>Orders for weddings go to <a href="https://example.org/orders">the order form</a>.</p>
</body></html>
"""

MARKDOWN_TITLE = "Harbor Handbook"
MARKDOWN_DOC = """# Harbor Handbook

Welcome to the harbor. This handbook explains the rules for every visiting boat.

## Mooring

Boats moor at the north pier. The fee is paid at the office before noon.

```text
# this line is code, not a heading
fee = nights * 9
```

## Fuel

The fuel dock opens at eight. Diesel is sold by the liter.

Setext heading
--------------

Sections may also be underlined. The office keeps a copy of this page.
"""


def long_text(paragraphs: int = 40, *, seed: int = 7) -> str:
    """Prose without headings: many paragraphs of sentences that each end with a period."""
    rng = random.Random(seed)
    subjects = ["The harbor master", "A fisher", "The ferry", "Each visitor", "The baker", "The lighthouse"]
    verbs = ["checks", "repairs", "paints", "counts", "opens", "watches"]
    objects = ["the nets", "the pier lamps", "the tide tables", "the fuel pump", "the crab pots", "the gate"]
    tails = ["before dawn", "after the storm", "every Tuesday", "in the cold months", "with great care"]
    out = []
    for number in range(paragraphs):
        sentences = [
            f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} {rng.choice(tails)} "
            f"in paragraph {number + 1}."
            for _ in range(rng.randint(3, 9))
        ]
        out.append(" ".join(sentences))
    return "\n\n".join(out) + "\n"


LATIN1_TEXT = (
    "Le café du port ouvre à six heures. Zoë sert des crêpes et André répare les filets.\n\n"
    "Größe der Boote: über zwölf Meter. Señor Muñoz arrive de Málaga.\n"
)

# --- feeds -------------------------------------------------------------------------------------
RSS_ITEM_TITLES = ["Pier lamps repaired", "Crab season opens", "Ferry timetable changes"]
RSS_DOC = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Harbor News</title>
  <link>https://example.org/harbor</link>
  <description>News from the island harbor</description>
  <item>
    <title>Pier lamps repaired</title>
    <link>https://example.org/harbor/lamps</link>
    <guid isPermaLink="false">harbor-news-101</guid>
    <pubDate>Tue, 04 Mar 2031 08:00:00 GMT</pubDate>
    <dc:creator>Ines Marlow</dc:creator>
    <description><![CDATA[<p>All <b>twelve</b> pier lamps shine again.</p><p>The electrician used <a href="https://example.org/parts">new parts</a>.</p>]]></description>
  </item>
  <item>
    <title>Crab season opens</title>
    <link>https://example.org/harbor/crabs</link>
    <description>&lt;p&gt;Crab pots may be set from &lt;em&gt;the first of April&lt;/em&gt;.&lt;/p&gt;&lt;ul&gt;&lt;li&gt;Ten pots per boat.&lt;/li&gt;&lt;/ul&gt;</description>
  </item>
  <item>
    <title>Ferry timetable changes</title>
    <description>The ferry leaves at seven &amp; returns at six.</description>
    <content:encoded><![CDATA[<div><h3>New times</h3><p>The ferry leaves at <strong>seven</strong> and returns at six.</p><br/><img src="ferry.png" alt="The ferry"/></div>]]></content:encoded>
  </item>
</channel>
</rss>
"""

ATOM_ENTRY_TITLES = ["Gull census", "Boathouse roof"]
ATOM_DOC = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Lighthouse Journal</title>
  <id>urn:uuid:journal-feed</id>
  <updated>2031-05-02T10:00:00Z</updated>
  <entry>
    <title>Gull census</title>
    <id>urn:uuid:entry-gulls</id>
    <link rel="alternate" href="https://example.org/journal/gulls"/>
    <updated>2031-05-01T09:00:00Z</updated>
    <author><name>Aya Fenwick</name></author>
    <summary type="html">&lt;p&gt;We counted &lt;b&gt;212 gulls&lt;/b&gt; on the cliffs.&lt;/p&gt;</summary>
  </entry>
  <entry>
    <title type="html">Boathouse &lt;i&gt;roof&lt;/i&gt;</title>
    <id>urn:uuid:entry-roof</id>
    <updated>2031-05-02T09:00:00Z</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>The boathouse roof got <em>new slate</em>.</p><p>Rain no longer drips on the rowing boats.</p></div></content>
  </entry>
</feed>
"""

# --- small builders for everything else --------------------------------------------------------


def _text(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return build


def random_bytes(size: int, *, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    """A valid, tiny grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_zip_of_junk(folder: Path, name: str = "bundle.zip") -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.bin", random_bytes(300, seed=2))
        archive.writestr("b.dat", random_bytes(300, seed=3))
    return path


def write_elf(folder: Path, name: str = "tool") -> Path:
    path = folder / name
    path.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + random_bytes(400, seed=4))
    return path


EPUB_TITLE = "Tales of the Tide"


def write_epub(folder: Path, name: str = "tales.epub") -> Path:
    """A minimal EPUB 3: mimetype first and stored, container, package document, two chapters."""
    container = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""
    opf = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:title>{EPUB_TITLE}</dc:title><dc:creator>Bram Castell</dc:creator><dc:identifier id="id">tide-1</dc:identifier>
<dc:language>en</dc:language></metadata>
<manifest><item id="c1" href="one.xhtml" media-type="application/xhtml+xml"/>
<item id="c2" href="two.xhtml" media-type="application/xhtml+xml"/></manifest>
<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>"""

    def chapter(title: str, text: str) -> str:
        return (
            '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
            f"<head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"
        )

    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED
        )
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", opf)
        archive.writestr(
            "OEBPS/one.xhtml", chapter("The Storm", "The storm broke the old pier in one night.")
        )
        archive.writestr(
            "OEBPS/two.xhtml", chapter("The Calm", "In the calm the fishers rebuilt it with oak.")
        )
    return path


CSV_DOC = "boat,owner,berth\nGull,Ines Marlow,A4\nPetrel,Tomas Reed,B2\n"
JSON_DOC = '{"harbor": "North Isle", "piers": 2, "lamps": [12, 8]}\n'

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "pdf": write_pdf,
    "pdf_untitled": write_pdf_untitled,
    "pdf_table": write_pdf_table,
    "pdf_wrapped": write_pdf_wrapped,
    "pdf_encrypted": write_pdf_encrypted,
    "pdf_truncated": write_pdf_truncated,
    "pdf_images_only": write_pdf_images_only,
    "pptx": write_pptx,
    "xlsx": write_xlsx,
    "docx": write_docx,
    "epub": write_epub,
    "html": _text("bakery.html", HTML_DOC),
    "html_as_txt": _text("bakery-page.txt", HTML_DOC),
    "markdown": _text("handbook.md", MARKDOWN_DOC),
    "long_text": _text("logbook.txt", long_text()),
    "latin1": _text("cafe.txt", LATIN1_TEXT.encode("latin-1")),
    "nul_text": _text("nul.txt", b"Line one has a stray\x00 NUL byte.\n\nLine two is clean.\n"),
    "rss": _text("news.rss", RSS_DOC),
    "rss_as_txt": _text("news-feed.txt", RSS_DOC),
    "atom": _text("journal.xml", ATOM_DOC),
    "csv": _text("boats.csv", CSV_DOC),
    "json": _text("harbor.json", JSON_DOC),
    "random_pdf": _text("noise.pdf", random_bytes(4096, seed=5)),
    "random_docx": _text("noise.docx", random_bytes(4096, seed=6)),
    "random_txt": _text("noise.txt", random_bytes(4096, seed=8)),
    "empty": _text("empty.txt", b""),
    "blank": _text("blank.md", "  \n\n\t \n"),
    "png": _text("pixel.png", png_bytes()),
    "png_as_pdf": _text("pixel.pdf", png_bytes()),
    "zip": write_zip_of_junk,
    "elf": write_elf,
}


def make_samples(folder: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Write the named samples (default: all of them) into ``folder``; returns ``{name: path}``."""
    folder.mkdir(parents=True, exist_ok=True)
    return {name: BUILDERS[name](folder) for name in (names or list(BUILDERS))}
