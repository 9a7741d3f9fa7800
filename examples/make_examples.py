"""Write the example corpus in ``examples/docs/``: eight documents about one invented company.

Fernhollow Robotics, a small maker of orchard-picking robots, is fictional, and so is every
person, place, number and date below; all text was written for this project. The facts are meant
to connect across files, so cross-document questions have answers, for example:

* Which firmware fixed the gripper slipping on wet fruit, and when was it released?
  (product spec, pilot report, news feed)
* Why was the Picker P4 prototype moved to Q4? (roadmap slides, meeting notes)
* How did the Holm Orchards pilot compare with the P3's rated picking speed?
  (field-trial workbook, pilot report, product spec)
* Who leads field operations and what safety rules apply in orchards? (handbook, pilot report)

Run ``python examples/make_examples.py`` (needs the dev extras fpdf2 and python-docx; python-pptx
and openpyxl come with MarkItDown). Output is byte-for-byte reproducible: fixed timestamps.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "docs"
FIXED = dt.datetime(2031, 6, 30, 12, 0, 0, tzinfo=dt.UTC)
STAMP = b"2031-06-30T12:00:00Z"

HANDBOOK = """\
# Fernhollow Robotics Employee Handbook

Fernhollow Robotics builds robots that pick apples and pears. Mara Okonkwo and Teodor Lind founded
the company in 2019 in Eskerby, a market town surrounded by orchards. Today 41 people work here.

## Teams

- **Hardware** is led by Priya Vance. The team designs the arm, the gripper and the battery pack.
- **Software** is led by Jonas Ahl. The team writes the vision system and the robot firmware.
- **Field Operations** is led by Lucia Berg. The team runs trials and pilots in customer orchards.
- **Customer Success** is led by Owen Marsh. The team handles leases, training and support.

## Working hours

Core hours are 10:00 to 15:00. Outside core hours you may plan your own time. During harvest
season (August to October) Field Operations works in shifts that start at 06:00.

## Safety in the orchard

Every field test follows the two-person rule: two trained people must be present while a robot
moves. A robot in orchard mode never drives faster than 1.2 m/s. Anyone may press the red stop
button at any time, and nobody is ever blamed for a stop.

Report every incident in the incident log within 24 hours. The Head of Safety, Ruth Calder,
reviews the log every Monday.

## Travel

Book trips to customer orchards through Owen Marsh's team. The company pays for a hotel when a
trial site is more than 90 km from Eskerby.

## On-call

Software engineers share a weekly on-call rotation during harvest season. The on-call engineer
answers robot alerts within 30 minutes between 06:00 and 22:00.
"""

SPEC_TITLE = "Picker P3 Product Specification"
SPEC_PAGES = [
    (
        "Picker P3 Product Specification",
        (
            "The Picker P3 is the third generation of the Fernhollow orchard robot. It went on sale in "
            "March 2030. The P3 drives between tree rows on rubber tracks, finds ripe fruit with two "
            "stereo cameras and picks it with a soft three-finger gripper.\n\n"
            "The rated picking speed is 1,100 apples per hour in a trellis orchard. In older orchards "
            "with wide trees the speed drops to about 700 apples per hour."
        ),
    ),
    (
        "Power and movement",
        (
            "The P3 carries a 4.2 kWh lithium iron phosphate battery. One charge lasts for a ten-hour "
            "shift. A full charge takes three hours.\n\n"
            "The robot weighs 310 kg. Its top speed is 2.5 m/s on roads, but in orchard mode the "
            "firmware limits it to 1.2 m/s. The arm reaches fruit up to 3.4 m above the ground."
        ),
    ),
    (
        "Comparison with the Picker P2",
        "The table below compares the P3 with the P2, which was sold from 2027 to 2029.",
    ),
    (
        "Known issues",
        (
            "With firmware 3.1 and older, the gripper can slip on wet fruit after rain. Firmware 3.2 "
            "fixes this: the gripper now measures the fruit surface and grips 20 percent harder when "
            "the skin is wet. Customers should update every robot to firmware 3.2.\n\n"
            "The left camera lens can fog on cold mornings below 4 degrees Celsius. A heated lens "
            "cover is planned for the Picker P4."
        ),
    ),
]
SPEC_TABLE = [
    ["Property", "Picker P2", "Picker P3"],
    ["Apples per hour", "650", "1,100"],
    ["Battery", "3.0 kWh", "4.2 kWh"],
    ["Weight", "355 kg", "310 kg"],
    ["Arm reach", "2.9 m", "3.4 m"],
]

ROADMAP_SLIDES = [
    ("Fernhollow Roadmap 2031", "Presented by Mara Okonkwo to the board on 13 January 2031."),
    ("Q1: Firmware 3.2", "Fix the gripper slip on wet fruit. Owner: Jonas Ahl (Software)."),
    (
        "Q2: Holm Orchards pilot",
        "Six P3 robots picking for eight weeks. Owner: Lucia Berg (Field Operations).",
    ),
    (
        "Q3: Picker P4 prototype",
        "New 5.0 kWh battery from Voltane and a heated camera lens. Owner: Priya Vance.",
    ),
    ("Q4: Series B funding", "Raise 18 million to build 200 robots per year."),
]
ROADMAP_NOTES = "Risk: Voltane has not yet confirmed the battery cell delivery date."

TRIALS = {
    "Trials": [
        ["Site", "Date", "Robot", "Firmware", "Apples per hour", "Damaged fruit %"],
        ["Holm Orchards", "2031-04-14", "P3-017", "3.2", 1010, 2.1],
        ["Holm Orchards", "2031-04-28", "P3-017", "3.2", 1060, 1.6],
        ["Holm Orchards", "2031-05-19", "P3-022", "3.2", 1050, 1.7],
        ["Sandvik Fruit Estate", "2031-05-26", "P3-009", "3.1", 690, 3.4],
    ],
    "Battery": [
        ["Pack", "Cycles", "Capacity left %"],
        ["P3 4.2 kWh (series)", 800, 93],
        ["P4 5.0 kWh (Voltane sample)", 300, 98],
    ],
    "Incidents": [
        ["Date", "Site", "Description", "Action"],
        [
            "2031-04-21",
            "Holm Orchards",
            "Robot P3-022 stopped by stop button; branch in track",
            "None needed",
        ],
        [
            "2031-05-02",
            "Holm Orchards",
            "Gripper slipped on wet pears (robot still on firmware 3.1)",
            "Updated to 3.2",
        ],
    ],
}

PILOT_TITLE = "Holm Orchards Pilot Report"
PILOT_SECTIONS = [
    (
        "Summary",
        (
            "From 14 April to 9 June 2031, six Picker P3 robots picked apples and pears at Holm Orchards. "
            "Lucia Berg led the pilot for Field Operations, with orchard manager Henrik Holm."
        ),
    ),
    (
        "Results",
        (
            "The robots averaged 1,040 apples per hour over the three measured trials, which is close to "
            "the rated 1,100 apples per hour of the P3. On average 1.8 percent of the fruit was damaged, "
            "below the 2.5 percent limit in the contract."
        ),
    ),
    (
        "Incidents",
        (
            "On 2 May one robot still ran firmware 3.1 and its gripper slipped on wet pears. After the "
            "update to firmware 3.2 the problem did not come back. The two-person rule was followed "
            "on every day of the pilot, and one stop button press was logged."
        ),
    ),
    (
        "Recommendation",
        (
            "Holm Orchards should lease ten robots for the 2031 harvest. Fernhollow should ship every new "
            "robot with firmware 3.2 installed."
        ),
    ),
]

CUSTOMERS_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Fernhollow Robotics - Customers</title>
<style>table { border-collapse: collapse; }</style></head>
<body>
<h1>Our customers</h1>
<p>Fernhollow robots pick fruit in <strong>three</strong> orchards today.</p>
<h2>Holm Orchards</h2>
<p>A family orchard of 60 hectares near Eskerby. Holm ran a pilot with six Picker P3 robots in
spring 2031 and now leases ten robots for the harvest.</p>
<h2>Sandvik Fruit Estate</h2>
<p>A large estate with old, wide apple trees. Sandvik tested one P3 in May 2031; a full pilot
starts in August 2031.</p>
<h2>Greyfield Cider</h2>
<p>A cider maker that uses two P2 robots for windfall apples.</p>
<h2>Pricing</h2>
<table>
<tr><th>Plan</th><th>Price per robot</th><th>Includes</th></tr>
<tr><td>Harvest lease</td><td>2,400 per month</td><td>Support and firmware updates</td></tr>
<tr><td>Purchase</td><td>68,000</td><td>One year of support</td></tr>
</table>
<p>Questions? Write to <a href="mailto:sales@fernhollow.example">our sales team</a>.</p>
</body>
</html>
"""

MEETING_NOTES = """\
Weekly leads meeting, 3 March 2031

Present: Mara Okonkwo, Teodor Lind, Priya Vance, Jonas Ahl, Lucia Berg, Owen Marsh.

Firmware 3.2 passed the wet-fruit test on the test rig. Jonas Ahl will release it on 10 March.

Voltane wrote that the 5.0 kWh battery cells will arrive in September, not in June. Without the
cells the Picker P4 prototype cannot be built in Q3. Decision: the P4 prototype moves to Q4, and
the Series B funding round moves to Q1 2032 so that investors can see the prototype.

Lucia Berg confirmed that the Holm Orchards pilot starts on 14 April with six P3 robots.

Owen Marsh reported that Sandvik Fruit Estate wants a one-robot test in May. Decision: approved,
with the robot on firmware 3.1 because the Sandvik test rig is offline until June.

Next meeting: 10 March 2031.
"""

NEWS_ITEMS = [
    (
        "fh-2031-03",
        "Firmware 3.2 released",
        "Mon, 10 Mar 2031 09:00:00 GMT",
        "Jonas Ahl",
        (
            "<p>Firmware <b>3.2</b> is out. The gripper now holds wet fruit firmly, so robots keep picking "
            "after rain.</p><p>All Picker P3 owners can install it from the service app.</p>"
        ),
    ),
    (
        "fh-2031-04",
        "Ruth Calder joins as Head of Safety",
        "Tue, 01 Apr 2031 08:30:00 GMT",
        "Mara Okonkwo",
        (
            "<p>Ruth Calder worked for twelve years on farm machinery safety. She now reviews our "
            "<em>incident log</em> every week and trains new field staff in the two-person rule.</p>"
        ),
    ),
    (
        "fh-2031-06",
        "Holm Orchards pilot completed",
        "Tue, 10 Jun 2031 16:00:00 GMT",
        "Lucia Berg",
        (
            "<p>Six robots picked at an average of <strong>1,040 apples per hour</strong> with 1.8% "
            "damaged fruit.</p><ul><li>Ten robots leased for the harvest.</li>"
            "<li>Full report available to customers.</li></ul>"
        ),
    ),
    (
        "fh-2031-07",
        "Picker P4 prototype moves to Q4",
        "Mon, 30 Jun 2031 10:00:00 GMT",
        "Teodor Lind",
        (
            "<p>Our battery supplier Voltane delays the new 5.0 kWh cells to September. We will show the "
            "P4 prototype in the fourth quarter.</p>"
        ),
    ),
]


def write_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(SPEC_TITLE)
    pdf.set_author("Fernhollow Robotics")
    pdf.set_creation_date(FIXED)
    for number, (heading, text) in enumerate(SPEC_PAGES, 1):
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 10, heading)
        pdf.ln(2)
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, text)
        if number == 3:
            pdf.ln(4)
            with pdf.table() as table:
                for cells in SPEC_TABLE:
                    row = table.row()
                    for cell in cells:
                        row.cell(cell)
    path.write_bytes(bytes(pdf.output()))


def write_pptx(path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    deck.core_properties.title = ROADMAP_SLIDES[0][0]
    deck.core_properties.created = deck.core_properties.modified = FIXED.replace(tzinfo=None)
    for number, (title, body) in enumerate(ROADMAP_SLIDES):
        slide = deck.slides.add_slide(deck.slide_layouts[0 if number == 0 else 1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if number == 3:
            slide.notes_slide.notes_text_frame.text = ROADMAP_NOTES
    buffer = io.BytesIO()
    deck.save(buffer)
    path.write_bytes(_fixed_zip(buffer.getvalue()))


def write_xlsx(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    book.properties.title = "Field Trials 2031"
    book.properties.created = book.properties.modified = FIXED.replace(tzinfo=None)
    for name, rows in TRIALS.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    path.write_bytes(_fixed_zip(buffer.getvalue()))


def write_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = PILOT_TITLE
    document.core_properties.created = document.core_properties.modified = FIXED.replace(tzinfo=None)
    document.add_heading(PILOT_TITLE, level=1)
    for heading, text in PILOT_SECTIONS:
        document.add_heading(heading, level=2)
        document.add_paragraph(text)
    table = document.add_table(rows=1, cols=3)
    for cell, text in zip(
        table.rows[0].cells, ["Trial date", "Apples per hour", "Damaged fruit %"], strict=True
    ):
        cell.text = text
    for row in TRIALS["Trials"][1:4]:
        cells = table.add_row().cells
        cells[0].text, cells[1].text, cells[2].text = row[1], f"{row[4]:,}", str(row[5])
    buffer = io.BytesIO()
    document.save(buffer)
    path.write_bytes(_fixed_zip(buffer.getvalue()))


def rss() -> str:
    items = "".join(
        f"""
  <item>
    <title>{title}</title>
    <link>https://fernhollow.example/news/{guid}</link>
    <guid isPermaLink="false">{guid}</guid>
    <pubDate>{date}</pubDate>
    <dc:creator>{author}</dc:creator>
    <description><![CDATA[{html}]]></description>
  </item>"""
        for guid, title, date, author, html in NEWS_ITEMS
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Fernhollow Robotics News</title>
  <link>https://fernhollow.example/news</link>
  <description>News from Fernhollow Robotics</description>{items}
</channel>
</rss>
"""


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite an OOXML package with fixed entry timestamps, so reruns give identical bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED.timetuple()[:6])
            fixed.external_attr = info.external_attr
            data = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps "modified" with the time of saving
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + STAMP, data)
            target.writestr(fixed, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    (OUT / "customers.html").write_text(CUSTOMERS_HTML, encoding="utf-8")
    (OUT / "meeting-notes-2031-03-03.txt").write_text(MEETING_NOTES, encoding="utf-8")
    (OUT / "news.rss").write_text(rss(), encoding="utf-8")
    write_pdf(OUT / "picker-p3-spec.pdf")
    write_pptx(OUT / "roadmap-2031.pptx")
    write_xlsx(OUT / "field-trials-2031.xlsx")
    write_docx(OUT / "holm-pilot-report.docx")
    total = sum(path.stat().st_size for path in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.0f} KB, into {OUT}")


if __name__ == "__main__":
    main()
