"""Shared fixtures: the bundled sample runs (data/samples/*) and a tiny synthetic nsys export.

`sample_run_dirs` FAILS (does not skip) when data/samples holds no run with a trace: the dashboard must ship
with bundled runs. TRTSCOPE_SAMPLES points the tests (and the app) at another samples directory.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRACE_NAMES = ("trace.sqlite", "trace.sqlite.xz", "trace.sqlite.zst", "trace.sqlite.gz")


def samples_dir() -> Path:
    return Path(os.environ.get("TRTSCOPE_SAMPLES") or REPO / "data" / "samples")


def sample_dirs() -> list[Path]:
    """Run directories under the samples dir that hold a trace file."""
    d = samples_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and any((p / n).is_file() for n in TRACE_NAMES))


@pytest.fixture(scope="session")
def sample_run_dirs() -> list[Path]:
    dirs = sample_dirs()
    if not dirs:
        pytest.fail(f"no bundled runs under {samples_dir()}: the dashboard needs data/samples/<run>/trace.sqlite.xz")
    return dirs


@pytest.fixture(scope="session")
def synthetic_trace(tmp_path_factory) -> Path:
    """A small, valid nsys-like export (see make_synthetic_trace)."""
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.sqlite"
    make_synthetic_trace(path)
    return path


def make_synthetic_trace(path: Path, iterations: int = 3, layers: int = 4, metrics: bool = True) -> Path:
    """Write a minimal Nsight-Systems-shaped SQLite export (tables and columns as nsys 2025 names them).

    One thread; per iteration `iteration_<i>` > preprocess (an H2D copy on stream 13), inference (`layers`
    layer ranges `block<k>`, each launching a Tensor-Core GEMM (the last layer: an elementwise kernel instead)
    and an elementwise kernel on stream 7, plus a memset on stream 14) and postprocess (a D2H copy). Iterations are 1 ms apart; GPU work starts 5 us after
    its launch. With `metrics`, a 'Tensor Active [Throughput %]' sample every 50 us.
    """
    pid, tid = 4242, 4243
    gpid, gtid = pid << 24, (pid << 24) | tid
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL,
            deviceId INTEGER, contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER,
            demangledName INTEGER, shortName INTEGER, registersPerThread INTEGER, gridX INTEGER, gridY INTEGER,
            gridZ INTEGER, blockX INTEGER, blockY INTEGER, blockZ INTEGER, staticSharedMemory INTEGER,
            dynamicSharedMemory INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            streamId INTEGER, correlationId INTEGER, globalPid INTEGER, bytes INTEGER, copyKind INTEGER,
            srcKind INTEGER, dstKind INTEGER, srcDeviceId INTEGER, dstDeviceId INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_MEMSET (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            streamId INTEGER, correlationId INTEGER, globalPid INTEGER, bytes INTEGER, value INTEGER,
            memKind INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
            globalTid INTEGER, correlationId INTEGER, nameId INTEGER, returnValue INTEGER);
        CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, text TEXT,
            globalTid INTEGER, textId INTEGER, domainId INTEGER);
        CREATE TABLE TARGET_INFO_GPU (vmId INTEGER, id INTEGER, name TEXT, busLocation TEXT, l2CacheSize INTEGER,
            totalMemory INTEGER, memoryBandwidth INTEGER, clockRate INTEGER, smCount INTEGER, chipName TEXT,
            computeMajor INTEGER, computeMinor INTEGER);
        CREATE TABLE TARGET_INFO_GPU_METRICS (typeId INTEGER, sourceId INTEGER, typeName TEXT, metricId INTEGER,
            metricName TEXT);
        CREATE TABLE GPU_METRICS (rawTimestamp INTEGER, timestamp INTEGER, typeId INTEGER, metricId INTEGER,
            value INTEGER);
    """)
    strings = {"gemm": "sm90_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x64", "ew": "elementwise_add_kernel",
               "launch": "cudaLaunchKernel_v7000", "memcpy": "cudaMemcpyAsync_v3020", "memset": "cudaMemsetAsync"}
    ids = {k: i + 1 for i, k in enumerate(strings)}
    con.executemany("INSERT INTO StringIds VALUES (?, ?)", [(ids[k], v) for k, v in strings.items()])
    con.execute("INSERT INTO TARGET_INFO_GPU VALUES (0, 0, 'Synthetic GPU', '0000:00:00.0', 52428800, "
                "85017493504, 3352320000000, 1980000000, 132, 'GH100', 9, 0)")
    kernels, copies, memsets, calls, ranges = [], [], [], [], []
    corr = 0

    def launch(t, name_id):
        nonlocal corr
        corr += 1
        calls.append((t, t + 3_000, 1, gtid, corr, ids[name_id], 0))
        return corr

    t0 = 1_000_000_000
    for i in range(iterations):
        it = t0 + i * 1_000_000
        ranges.append((it, it + 990_000, 59, f"iteration_{i}", gtid, None, 0))
        ranges.append((it + 1_000, it + 300_000, 59, "preprocess", gtid, None, 0))
        c = launch(it + 10_000, "memcpy")
        copies.append((it + 15_000, it + 115_000, 0, 13, c, gpid, 1 << 20, 1, 0, 2, 0, 0))
        inf = it + 300_000
        ranges.append((inf, inf + 600_000, 59, "inference", gtid, None, 0))
        c = launch(inf + 1_000, "memset")
        memsets.append((inf + 6_000, inf + 8_000, 0, 14, c, gpid, 4096, 0, 2))
        for k in range(layers):
            lo = inf + 10_000 + k * 140_000
            ranges.append((lo, lo + 130_000, 59, f"block{k}", gtid, None, 0))
            c = launch(lo + 1_000, "launch")
            main = "ew" if k == layers - 1 else "gemm"  # the last layer misses Tensor Cores
            kernels.append((lo + 6_000, lo + 66_000, 0, 1, 7, c, gpid, ids[main], ids[main], 128, 64, 1, 1,
                            128, 1, 1, 0, 49152))
            c = launch(lo + 5_000, "launch")
            kernels.append((lo + 70_000, lo + 80_000, 0, 1, 7, c, gpid, ids["ew"], ids["ew"], 32, 256, 1, 1,
                            256, 1, 1, 0, 0))
        post = it + 920_000
        ranges.append((post, post + 60_000, 59, "postprocess", gtid, None, 0))
        c = launch(post + 1_000, "memcpy")
        copies.append((post + 6_000, post + 16_000, 0, 13, c, gpid, 4000, 2, 2, 0, 0, 0))
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (" + ",".join("?" * 18) + ")", kernels)
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY VALUES (" + ",".join("?" * 12) + ")", copies)
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_MEMSET VALUES (" + ",".join("?" * 9) + ")", memsets)
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?,?,?,?,?,?,?)", calls)
    con.executemany("INSERT INTO NVTX_EVENTS VALUES (?,?,?,?,?,?,?)", ranges)
    if metrics:
        con.execute("INSERT INTO TARGET_INFO_GPU_METRICS VALUES (1, 0, 'GPU', 1, 'Tensor Active [Throughput %]')")
        samples = [(t, t, 1, 1, (t // 50_000) % 60) for t in range(t0, t0 + iterations * 1_000_000, 50_000)]
        con.executemany("INSERT INTO GPU_METRICS VALUES (?,?,?,?,?)", samples)
    con.commit()
    con.close()
    return path
