"""Nightly sync cost: `pyramid sync` over 1,000 unchanged documents (hash check only) versus
`sha256sum` over the same files, both as whole commands, median of several runs.

    python benchmarks/sync.py                      # 1,000 PDFs of ~500 KB (text + an embedded photo)
    python benchmarks/sync.py --kind markdown      # 1,000 small markdown files (~4 KB): fixed costs dominate
    python benchmarks/sync.py --edit               # LLM calls of a one-page edit in a 100-page document

The first (untimed) sync ingests the corpus; the timed runs find every file unchanged. Prints a table
and writes benchmarks/results/sync_<kind>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import TextMaker  # noqa: E402
from ingest_pages import RESULTS, fresh_database  # noqa: E402


def _noise_png(rng: random.Random, width: int, height: int) -> bytes:
    """An incompressible RGB image: the weight of a photo in a real office document."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        import struct

        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    import struct

    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def write_pdfs(folder: Path, count: int, *, seed: int = 11) -> list[Path]:
    from fpdf import FPDF

    maker = TextMaker(seed)
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    image = folder.parent / "photo.png"
    paths = []
    for index in range(count):
        path = folder / f"report-{index:04d}.pdf"
        paths.append(path)
        if path.exists():
            continue
        image.write_bytes(_noise_png(rng, 300, 540))  # ~480 KB, different for every file
        pdf = FPDF()
        pdf.set_font("Helvetica", size=11)
        for page in range(2):
            pdf.add_page()
            pdf.multi_cell(0, 6, maker.paragraph((6, 9)))
            if page == 0:
                pdf.image(str(image), w=60)
        path.write_bytes(bytes(pdf.output()))
    return paths


def write_markdown(folder: Path, count: int, *, seed: int = 11) -> list[Path]:
    maker = TextMaker(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"note-{index:04d}.md"
        paths.append(path)
        if not path.exists():
            path.write_text(maker.document(f"Note {index}", 1, 3500), encoding="utf-8")
    return paths


def timed(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def edit_ratio(pages: int, insights_per_page: int) -> None:
    """Ingest a ``pages``-page document with a counting scripted model, edit one page in the
    middle, sync, and compare the model calls of the sync with those of the full ingest."""
    import re

    sys.path.insert(0, str(ROOT / "tests"))
    from scripted import Scripted, Window

    from pyramid import Pyramid
    from pyramid.store.database import stop_embedded

    def window(w: Window) -> dict[str, object]:
        # Like a model: a few short sentences of every page on its first reading.
        add = []
        for page, first, text in w.pages:
            if first:
                body = " ".join(
                    line for line in text.splitlines() if line.strip() and not line.startswith("#")
                )
                sentences = [s for s in re.split(r"(?<=[.!?])\s+", body) if s.strip()]
                add += [
                    {"text": " ".join(s.split()[:20]), "pages": [page]} for s in sentences[:insights_per_page]
                ]
        return {"add": add, "revise": [], "delete": []}

    def concepts(rows: list[tuple[int, str]]) -> dict[str, object]:
        # Named after what the insights say, like a model: a batch whose insights changed comes
        # back different, so the merge and the abstract must run again.
        words = " ".join(text for _, text in rows).split()
        return {
            "concepts": [
                {
                    "name": " ".join(words[:4]),
                    "description": f"{' '.join(words[:30])} ({len(words)} words)",
                    "insights": [n for n, _ in rows],
                }
            ]
        }

    maker = TextMaker(5)
    sections = [maker.section(3000) for _ in range(pages)]
    with tempfile.TemporaryDirectory(prefix="kp-edit-") as tmp:
        work = Path(tmp)
        path = work / "manual.md"
        path.write_text("# Operations manual\n\n" + "\n\n".join(sections), encoding="utf-8")
        dsn, data_dir = fresh_database(work)
        try:
            with Pyramid.open(dsn=dsn, retry_backoff=0) as kp:
                full = Scripted(on_window=window, on_concepts=concepts)
                report = kp.ingest([path], model=full.model())
                assert report.ok, report.failed
                page_count = kp.document(str(path)).document.pages
                middle = page_count // 2
                sections[middle - 1] = sections[middle - 1].replace(".", ", as revised in May.", 1)
                path.write_text("# Operations manual\n\n" + "\n\n".join(sections), encoding="utf-8")
                edit = Scripted(on_window=window, on_concepts=concepts)
                report = kp.sync([path], model=edit.model())
                assert report.counts()["updated"] == 1, report.results
        finally:
            stop_embedded(data_dir)

    def by_agent(brain: Scripted) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in brain.calls:
            counts[call.agent] = counts.get(call.agent, 0) + 1
        return counts

    result = {
        "pages": page_count,
        "full_calls": len(full.calls),
        "full_by_step": by_agent(full),
        "edit_calls": len(edit.calls),
        "edit_by_step": by_agent(edit),
        "ratio": round(len(edit.calls) / len(full.calls), 4),
    }
    print()
    print("| document | full ingest: LLM calls | one-page edit: LLM calls | ratio |")
    print("|---|---:|---:|---:|")
    steps = ", ".join(f"{k} {v}" for k, v in result["edit_by_step"].items())
    full_steps = ", ".join(f"{k} {v}" for k, v in result["full_by_step"].items())
    print(
        f"| {page_count} pages | {len(full.calls)} ({full_steps}) | {len(edit.calls)} ({steps}) "
        f"| {result['ratio']:.1%} |"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sync_edit.json").write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=["pdf", "markdown"], default="pdf")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--corpus", type=Path, help="keep the corpus here between runs")
    parser.add_argument("--edit", action="store_true", help="measure the one-page-edit call ratio instead")
    parser.add_argument("--pages", type=int, default=100, help="with --edit: pages of the document")
    parser.add_argument("--insights-per-page", type=int, default=5)
    args = parser.parse_args()
    if args.edit:
        edit_ratio(args.pages, args.insights_per_page)
        return

    from pyramid.store.database import stop_embedded

    with tempfile.TemporaryDirectory(prefix="kp-sync-") as tmp:
        work = Path(tmp)
        corpus = args.corpus or work / "corpus"
        writer = write_pdfs if args.kind == "pdf" else write_markdown
        files = writer(corpus / args.kind, args.files)
        size = sum(p.stat().st_size for p in files)
        print(f"corpus: {len(files)} files, {size / 2**20:.0f} MiB", file=sys.stderr)
        dsn, data_dir = fresh_database(work)
        env = {**os.environ, "PYRAMID_DSN": dsn, "PYTHONPATH": str(ROOT)}
        try:
            started = time.perf_counter()
            first = subprocess.run(
                [sys.executable, "-m", "pyramid", "sync", str(corpus / args.kind), "--json"],
                env=env,
                capture_output=True,
                text=True,
            )
            report = json.loads(first.stdout)
            print(
                f"initial sync: {report['counts']} in {time.perf_counter() - started:.0f}s", file=sys.stderr
            )
            assert report["counts"]["failed"] == 0, first.stdout[-2000:]
            check = subprocess.run(
                [sys.executable, "-m", "pyramid", "sync", str(corpus / args.kind), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            counts = json.loads(check.stdout)["counts"]
            assert counts["unchanged"] == report["counts"]["added"] and counts["added"] == 0, counts
            sync_times = timed(
                [sys.executable, "-m", "pyramid", "sync", str(corpus / args.kind)], env, args.runs
            )
            sha_times = timed(["sha256sum", *map(str, files)], env, args.runs)
        finally:
            stop_embedded(data_dir)

    sync_median, sha_median = statistics.median(sync_times), statistics.median(sha_times)
    result = {
        "kind": args.kind,
        "files": len(files),
        "documents": counts["unchanged"],
        "mib": round(size / 2**20, 1),
        "runs": args.runs,
        "pyramid_sync_median_s": round(sync_median, 3),
        "sha256sum_median_s": round(sha_median, 3),
        "ratio": round(sync_median / sha_median, 2),
        "pyramid_sync_runs_s": [round(t, 3) for t in sync_times],
        "sha256sum_runs_s": [round(t, 3) for t in sha_times],
    }
    print()
    print("| corpus | files | MiB | `pyramid sync` (unchanged) | `sha256sum` | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| {args.kind} | {len(files)} | {size / 2**20:.0f} | {sync_median:.2f} s | {sha_median:.2f} s "
        f"| {sync_median / sha_median:.2f}× |"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"sync_{args.kind}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
