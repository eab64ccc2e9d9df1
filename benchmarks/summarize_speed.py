"""Time `summarize --json` against the raw SQLite GROUP BY queries over the same tables, in one run.

    python benchmarks/summarize_speed.py LONG.sqlite

Baseline (what any tool must at least do): kernels by name, copies by kind, NVTX ranges by text, one pass
over the API calls. Each side runs in a fresh subprocess (cold Python, warm OS page cache after a first
untimed read); we report wall seconds, the ratio, and the summarize process's peak RSS (MB).
Target (issue "Trace core"): ratio <= 2 and peak RSS < 2 GB on a 2-core machine.
"""

from __future__ import annotations

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
    trace = sys.argv[1]
    Path(trace).read_bytes() if Path(trace).stat().st_size < 4 << 30 else None  # warm the page cache
    raw_s, _ = timed([sys.executable, "-c", RAW, trace])
    ours_s, rss = timed([sys.executable, "-m", "profiler", "summarize", "--json", trace])
    result = {"trace": trace, "raw_sql_s": round(raw_s, 2), "summarize_s": round(ours_s, 2),
              "ratio": round(ours_s / raw_s, 2), "summarize_peak_rss_mb": round(rss)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
