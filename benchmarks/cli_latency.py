"""Wall time of one `pyramid search` / `pyramid ask` from the shell, hybrid versus `--mode bm25`,
on examples/docs: what a user waits for, process start and query encoding included.

    python benchmarks/cli_latency.py                       # ingest examples/docs into a temp dir, 5 runs each
    python benchmarks/cli_latency.py --data-dir D --runs 9 # reuse an ingested data dir

Each command runs as its own process, in turn (bm25, hybrid, ask, ...), after one untimed warm-up
each (the embedded PostgreSQL is started by the first). Writes benchmarks/results/cli_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
QUERY = "How long does the battery of the P3 last?"


def pyramid(data_dir: Path, *args: str, backend: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYRAMID_EMBEDDING_BACKEND": backend}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pyramid", "--data-dir", str(data_dir), *args],
        check=True,
        capture_output=True,
        env=env,
        cwd=ROOT,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, help="an ingested data dir (default: ingest into a temp dir)"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--embedding-backend", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kp-cli-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "kp"
        if args.data_dir is None:
            took = pyramid(
                data_dir, "ingest", str(ROOT / "examples" / "docs"), backend=args.embedding_backend
            )
            print(f"ingested examples/docs in {took:.1f}s", file=sys.stderr)
        cases = {
            "search --mode bm25": ["search", QUERY, "--mode", "bm25"],
            "search (hybrid)": ["search", QUERY],
            "ask (no model)": ["ask", QUERY],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for argv in cases.values():
            pyramid(data_dir, *argv, backend=args.embedding_backend)  # warm-up
        for _ in range(args.runs):
            for name, argv in cases.items():
                times[name].append(pyramid(data_dir, *argv, backend=args.embedding_backend))
        if args.data_dir is None:
            subprocess.run(
                [sys.executable, "-m", "pyramid", "--data-dir", str(data_dir), "db", "stop"],
                capture_output=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
            )
    bm25 = statistics.median(times["search --mode bm25"])
    rows = {
        name: {
            "median_s": round(statistics.median(ts), 2),
            "min_s": round(min(ts), 2),
            "max_s": round(max(ts), 2),
            "x_bm25": round(statistics.median(ts) / bm25, 2),
        }
        for name, ts in times.items()
    }
    print("\n| command | median s | min s | max s | × bm25 |")
    print("|---|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| `pyramid {name}` | {r['median_s']} | {r['min_s']} | {r['max_s']} | {r['x_bm25']} |")
    result = {
        "query": QUERY,
        "runs": args.runs,
        "embedding_backend": args.embedding_backend,
        "rows": rows,
        "load_average": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'cli_latency.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
