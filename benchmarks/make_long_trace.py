"""Make a long capture from a real nsys export by replicating it along the time axis.

    python benchmarks/make_long_trace.py SOURCE(.sqlite|.sqlite.xz) OUT.sqlite --kernels 1000000

Each copy k shifts every timestamp by k x (the trace's span + 1 ms) and every correlationId by k x (max id
+ 1), so kernels still join to their launching API calls and NVTX ranges still nest. Tables that are not
replicated (strings, enums, device info, GPU metrics samples) are copied once.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.trace.files import resolve_trace  # noqa: E402

TIMED = {  # table -> (time columns, correlation column or None)
    "CUPTI_ACTIVITY_KIND_KERNEL": (("start", "end"), "correlationId"),
    "CUPTI_ACTIVITY_KIND_MEMCPY": (("start", "end"), "correlationId"),
    "CUPTI_ACTIVITY_KIND_MEMSET": (("start", "end"), "correlationId"),
    "CUPTI_ACTIVITY_KIND_RUNTIME": (("start", "end"), "correlationId"),
    "CUPTI_ACTIVITY_KIND_DRIVER": (("start", "end"), "correlationId"),
    "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION": (("start", "end"), "correlationId"),
    "NVTX_EVENTS": (("start", "end"), None),
}


def replicate(src: Path, out: Path, kernels: int) -> dict:
    """Write OUT with about `kernels` kernels; returns row counts of the replicated tables."""
    shutil.copyfile(src, out)
    con = sqlite3.connect(out)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    n_k = con.execute("SELECT count(*) FROM CUPTI_ACTIVITY_KIND_KERNEL").fetchone()[0]
    copies = max(1, math.ceil(kernels / n_k))
    lo, hi = con.execute(
        "SELECT min(start), max(end) FROM (SELECT start, end FROM CUPTI_ACTIVITY_KIND_KERNEL "
        "UNION ALL SELECT start, end FROM CUPTI_ACTIVITY_KIND_RUNTIME "
        "UNION ALL SELECT start, end FROM NVTX_EVENTS WHERE end IS NOT NULL)").fetchone()
    span = hi - lo + 1_000_000
    max_corr = con.execute("SELECT max(correlationId) FROM CUPTI_ACTIVITY_KIND_RUNTIME").fetchone()[0] + 1
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    for table, (times, corr) in TIMED.items():
        if table not in tables:
            continue
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        exprs = []
        for c in cols:
            if c in times:
                exprs.append(f"{c} + :k * {span}")
            elif c == corr:
                exprs.append(f"{c} + :k * {max_corr}")
            else:
                exprs.append(c)
        where = " WHERE eventType <> 75" if table == "NVTX_EVENTS" else ""
        con.execute(f"CREATE TEMP TABLE base AS SELECT * FROM {table}{where}")
        sql = f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM temp.base"
        for k in range(1, copies):
            con.execute(sql, {"k": k})
        con.execute("DROP TABLE temp.base")
        con.commit()
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TIMED if t in tables}
    con.close()
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source")
    p.add_argument("out")
    p.add_argument("--kernels", type=int, default=1_000_000)
    a = p.parse_args()
    t0 = time.perf_counter()
    counts = replicate(resolve_trace(a.source), Path(a.out), a.kernels)
    for table, n in counts.items():
        print(f"{table:40s} {n:>10,d}")
    print(f"wrote {a.out} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
