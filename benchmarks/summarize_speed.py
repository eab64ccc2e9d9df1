"""Time `summarize --json` against the raw SQLite GROUP BY queries over the same tables, in one run.

    python benchmarks/summarize_speed.py LONG.sqlite [--repeat 3]

Baseline (what any tool must at least do): kernels by name, copies by kind, NVTX ranges by text, one pass
over the API calls. Each side runs in a fresh subprocess (cold Python, warm OS page cache after a first
untimed read); each side runs --repeat times, alternating, and we report the fastest wall seconds of each,
their ratio, every run's seconds, and the summarize process's peak RSS (MB).
Target (issue "Trace core"): ratio <= 2 and peak RSS < 2 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RAW_SQL = [
    "SELECT demangledName, count(*), sum(end-start), min(end-start), max(end-start) "
    "FROM CUPTI_ACTIVITY_KIND_KERNEL GROUP BY demangledName",
    "SELECT copyKind, count(*), sum(end-start), sum(bytes) FROM CUPTI_ACTIVITY_KIND_MEMCPY GROUP BY copyKind",
    "SELECT coalesce(text, textId), count(*), sum(end-start) FROM NVTX_EVENTS GROUP BY coalesce(text, textId)",
    "SELECT count(*), sum(end-start), max(correlationId) FROM CUPTI_ACTIVITY_KIND_RUNTIME",
]

RAW = f"""
import sqlite3, sys
con = sqlite3.connect(f"file:{{sys.argv[1]}}?mode=ro&immutable=1", uri=True)
for q in {RAW_SQL!r}:
    con.execute(q).fetchall()
"""


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process."""
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return time.perf_counter() - t0, max(after, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (fastest counts)")
    args = parser.parse_args()
    trace = args.trace
    Path(trace).read_bytes() if Path(trace).stat().st_size < 4 << 30 else None  # warm the page cache
    raw, ours, rss = [], [], 0.0
    for _ in range(args.repeat):
        raw.append(timed([sys.executable, "-c", RAW, trace])[0])
        seconds, peak = timed([sys.executable, "-m", "profiler", "summarize", "--json", trace])
        ours.append(seconds)
        rss = max(rss, peak)
    result = {"trace": trace, "raw_sql_s": round(min(raw), 2), "summarize_s": round(min(ours), 2),
              "ratio": round(min(ours) / min(raw), 2), "summarize_peak_rss_mb": round(rss),
              "raw_runs_s": [round(x, 2) for x in raw], "summarize_runs_s": [round(x, 2) for x in ours]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
