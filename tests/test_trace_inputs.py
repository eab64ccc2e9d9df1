"""Opening traces: compressed copies, bad inputs with one-line reasons, older schemas, and the CLI contract."""

from __future__ import annotations

import gzip
import json
import lzma
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from profiler.analysis.kernels import kernel_summary
from profiler.analysis.summary import analyze
from profiler.errors import TraceError
from profiler.trace import open_trace
from profiler.trace.files import file_digest

DATA = Path(__file__).parent / "data"
REAL = DATA / "resnet18_fp16_b4.sqlite.xz"


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTSCOPE_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def plain(tmp_path) -> Path:
    out = tmp_path / "real.sqlite"
    out.write_bytes(lzma.decompress(REAL.read_bytes()))
    return out


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler", *args], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])


def test_compressed_copies_read_the_same_and_decompress_once(tmp_path, plain):
    raw = plain.read_bytes()
    (tmp_path / "t.sqlite.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "t.sqlite.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    expected = kernel_summary(open_trace(plain).kernels)
    for name in ("t.sqlite.gz", "t.sqlite.zst"):
        got = kernel_summary(open_trace(tmp_path / name).kernels)
        assert got.equals(expected)
    cached = list((tmp_path / "cache" / "traces").iterdir())
    assert len(cached) == 2
    stamp = cached[0].stat().st_mtime_ns
    open_trace(tmp_path / "t.sqlite.gz")  # second open: served from the cache, not decompressed again
    assert sorted((tmp_path / "cache" / "traces").iterdir()) == sorted(cached)
    assert cached[0].stat().st_mtime_ns == stamp


def test_user_file_is_never_written(plain):
    before = (file_digest(plain), plain.stat().st_mtime_ns)
    with open_trace(plain) as t:
        analyze(t)
    assert (file_digest(plain), plain.stat().st_mtime_ns) == before
    assert not Path(str(plain) + "-wal").exists() and not Path(str(plain) + "-journal").exists()


@pytest.mark.parametrize("make, reason", [
    (lambda d, real: d.joinpath("notes.sqlite").write_text("hello, not a database\n"), "not an nsys export"),
    (lambda d, real: d.joinpath("empty.sqlite").write_bytes(b""), "empty file"),
    (lambda d, real: d.joinpath("half.sqlite").write_bytes(real.read_bytes()[: real.stat().st_size // 2]),
     "truncated"),
    (lambda d, real: d.joinpath("cut.sqlite.xz").write_bytes(REAL.read_bytes()[:20000]), "truncated"),
    (lambda d, real: d.joinpath("junk.sqlite.gz").write_bytes(gzip.compress(b"x" * 5000)), "not a SQLite"),
    (lambda d, real: d.joinpath("model.onnx").write_bytes(b"\x08\x07\x12\x04onnx"), "not an nsys export"),
])
def test_bad_inputs_give_one_line_reasons(tmp_path, plain, make, reason):
    make(tmp_path, plain)
    bad = [p for p in tmp_path.iterdir() if p.is_file() and p != plain][0]
    with pytest.raises(TraceError, match=reason):
        with open_trace(bad) as t:
            analyze(t)
    r = cli("summarize", str(bad))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and reason in r.stderr
    assert "Traceback" not in r.stderr


def test_unrelated_sqlite_database_is_refused(tmp_path):
    db = tmp_path / "app.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(TraceError, match="not an Nsight Systems export"):
        open_trace(db)
    assert cli("summarize", str(db)).returncode == 2


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        open_trace(tmp_path / "nope.sqlite")
    with pytest.raises(TraceError, match="not a file"):
        open_trace(tmp_path)


def test_export_with_tables_dropped_still_gives_what_it_can(plain):
    con = sqlite3.connect(plain)
    for table in ("NVTX_EVENTS", "CUPTI_ACTIVITY_KIND_MEMCPY", "TARGET_INFO_GPU", "ENUM_CUDA_MEMCPY_OPER"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    con.commit()
    con.execute("VACUUM")
    con.close()
    with open_trace(plain) as t:
        a = analyze(t)
        assert len(a.kernel_summary) > 0 and a.stages.empty and a.layers.empty
        assert t.device["name"] == "unknown GPU"
        text = " ".join(t.warnings)
        assert "NVTX_EVENTS" in text and "TARGET_INFO_GPU" in text
    r = cli("summarize", "--json", str(plain))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["kernels"] and out["stages"] == [] and out["trace"]["warnings"]


def test_older_schema_with_renamed_and_missing_columns(plain):
    """An export whose kernel table lacks shortName and launch-config columns, whose NVTX table has no
    textId/domainId (older nsys), and whose memcpy table has no srcKind: every table still loads."""
    con = sqlite3.connect(plain)
    con.executescript("""
        CREATE TABLE k2 AS SELECT start, end, deviceId, contextId, streamId, correlationId, globalPid,
            demangledName FROM CUPTI_ACTIVITY_KIND_KERNEL;
        DROP TABLE CUPTI_ACTIVITY_KIND_KERNEL; ALTER TABLE k2 RENAME TO CUPTI_ACTIVITY_KIND_KERNEL;
        CREATE TABLE n2 AS SELECT start, end, eventType, coalesce(text, (SELECT value FROM StringIds
            WHERE id = textId)) AS text, globalTid FROM NVTX_EVENTS;
        DROP TABLE NVTX_EVENTS; ALTER TABLE n2 RENAME TO NVTX_EVENTS;
        CREATE TABLE m2 AS SELECT start, end, deviceId, streamId, correlationId, globalPid, bytes, copyKind
            FROM CUPTI_ACTIVITY_KIND_MEMCPY;
        DROP TABLE CUPTI_ACTIVITY_KIND_MEMCPY; ALTER TABLE m2 RENAME TO CUPTI_ACTIVITY_KIND_MEMCPY;
    """)
    con.commit()
    con.close()
    with open_trace(plain) as t:
        a = analyze(t)
        assert len(a.layers) > 10 and len(a.stages) == 4
        assert t.memcpy["src_kind"].isna().all()
        assert t.kernel_launches["grid_x"].isna().all()
        assert any("srcKind" in w for w in t.warnings)


def test_trace_without_gpu_activity(plain):
    con = sqlite3.connect(plain)
    for table in ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    con.commit()
    con.close()
    r = cli("summarize", str(plain))
    assert r.returncode == 2 and "no GPU activity" in r.stderr and r.stderr.count("\n") == 1


def test_human_output_names_stages_and_layers():
    r = cli("summarize", str(REAL))
    assert r.returncode == 0, r.stderr
    for word in ("Stages", "preprocess", "inference", "Top kernels", "Layers", "layer1.0.conv1"):
        assert word in r.stdout
