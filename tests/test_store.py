"""The run catalogue: import validates first, files are content-addressed, concurrent imports don't corrupt."""

from __future__ import annotations

import json
import lzma
import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import pytest

from profiler.errors import TraceError
from profiler.store import RunStore, default_store_dir
from profiler.trace.files import file_digest


def stored_files(store: RunStore) -> list[str]:
    return sorted(p.name for p in store.trace_dir.iterdir())


def test_import_registers_validated_trace(tmp_path, synthetic_trace):
    store = RunStore(tmp_path / "store")
    run = store.import_trace(synthetic_trace, name="synthetic", source="uploaded")
    assert run.name == "synthetic" and run.source == "uploaded"
    assert run.trace_path.exists() and run.trace_path.parent == store.trace_dir
    assert run.sha256 == file_digest(run.trace_path) == file_digest(synthetic_trace)
    assert run.trace_path.name.startswith(run.sha256)
    assert run.summary["kernels"] and run.summary["device"]["name"] == "Synthetic GPU"
    assert [r.id for r in store.list_runs()] == [run.id]
    assert store.get(run.id) == run
    # the same upload again is the same run, not a second copy
    again = store.import_trace(synthetic_trace, name="other name", source="uploaded")
    assert again.id == run.id and len(store.list_runs()) == 1 and len(stored_files(store)) == 1


def test_compressed_trace_stays_compressed(tmp_path, synthetic_trace):
    xz = tmp_path / "t.sqlite.xz"
    xz.write_bytes(lzma.compress(synthetic_trace.read_bytes()))
    store = RunStore(tmp_path / "store")
    run = store.import_trace(xz, name="xz")
    assert run.trace_path.name.endswith(".sqlite.xz") and run.sha256 == file_digest(xz)


def _bad_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    files = {}
    files["text"] = tmp_path / "notes.sqlite"
    files["text"].write_text("this is not a trace\n" * 100)
    files["empty"] = tmp_path / "empty.sqlite"
    files["empty"].write_bytes(b"")
    data = good.read_bytes()
    files["truncated"] = tmp_path / "truncated.sqlite"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["truncated_xz"] = tmp_path / "truncated.sqlite.xz"
    files["truncated_xz"].write_bytes(lzma.compress(data)[:2000])
    files["other_sqlite"] = tmp_path / "other.sqlite"
    con = sqlite3.connect(files["other_sqlite"])
    con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    # an older export schema: kernels lack demangledName, no copies or memsets
    files["old_schema"] = tmp_path / "old.sqlite"
    shutil.copyfile(good, files["old_schema"])
    con = sqlite3.connect(files["old_schema"])
    con.execute("ALTER TABLE CUPTI_ACTIVITY_KIND_KERNEL DROP COLUMN demangledName")
    con.execute("DROP TABLE CUPTI_ACTIVITY_KIND_MEMCPY")
    con.execute("DROP TABLE CUPTI_ACTIVITY_KIND_MEMSET")
    con.commit()
    con.close()
    return files


def test_bad_files_never_enter_the_catalogue(tmp_path, synthetic_trace):
    store = RunStore(tmp_path / "store")
    good = store.import_trace(synthetic_trace, name="good")
    before = (stored_files(store), store.list_runs())
    for kind, path in _bad_files(tmp_path, synthetic_trace).items():
        with pytest.raises(TraceError) as info:
            store.import_trace(path, name=kind)
        message = str(info.value)
        assert "\n" not in message and path.name in message, (kind, message)
        assert (stored_files(store), store.list_runs()) == before, kind
    assert store.get(good.id).trace_path.exists()


def test_old_schema_message_names_the_missing_column(tmp_path, synthetic_trace):
    store = RunStore(tmp_path / "store")
    old = _bad_files(tmp_path, synthetic_trace)["old_schema"]
    with pytest.raises(TraceError, match="demangledName"):
        store.import_trace(old, name="old")


def _write_run_dir(parent: Path, name: str, trace: Path, meta: dict | None = None) -> Path:
    d = parent / name
    d.mkdir(parents=True)
    (d / "trace.sqlite.xz").write_bytes(lzma.compress(trace.read_bytes()))
    (d / "metadata.json").write_text(json.dumps(meta or {"name": name, "precision": "fp16", "batch": 8}))
    return d


def test_register_bundled_is_idempotent(tmp_path, synthetic_trace):
    samples = tmp_path / "samples"
    _write_run_dir(samples, "resnet_fp16_b8", synthetic_trace)
    _write_run_dir(samples, "bert_fp32_b1", synthetic_trace, {"name": "bert fp32", "precision": "fp32"})
    (samples / "empty_dir").mkdir()
    store = RunStore(tmp_path / "store")
    first = store.register_bundled(samples)
    assert sorted(r.id for r in first) == ["bundled-bert_fp32_b1", "bundled-resnet_fp16_b8"]
    assert {r.name for r in first} == {"resnet_fp16_b8", "bert fp32"}
    assert store.get("bundled-bert_fp32_b1").metadata["precision"] == "fp32"
    created = {r.id: r.created for r in store.list_runs()}
    second = store.register_bundled(samples)
    assert {r.id: r.created for r in second} == created  # nothing re-imported
    assert len(store.list_runs()) == 2
    assert len(stored_files(store)) == 1  # same content, stored once


def test_remove_deletes_row_and_unshared_file(tmp_path, synthetic_trace):
    samples = tmp_path / "samples"
    _write_run_dir(samples, "a", synthetic_trace)
    store = RunStore(tmp_path / "store")
    bundled = store.register_bundled(samples)[0]
    uploaded = store.import_trace(samples / "a" / "trace.sqlite.xz", name="a again")  # same bytes, other source
    assert bundled.trace_path == uploaded.trace_path
    assert store.remove(uploaded.id) and uploaded.trace_path.exists()  # still used by the bundled run
    assert store.remove(bundled.id) and not bundled.trace_path.exists()
    assert store.list_runs() == [] and not store.remove(bundled.id)
    with pytest.raises(KeyError):
        store.get(bundled.id)


def test_default_location_is_outside_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTSCOPE_HOME", str(tmp_path / "home"))
    assert default_store_dir() == tmp_path / "home"
    assert RunStore().db_path == tmp_path / "home" / "catalogue.db"
    monkeypatch.delenv("TRTSCOPE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_dir() == tmp_path / "xdg" / "trtscope"


def _import_worker(store_dir: str, trace: str, name: str, out) -> None:
    try:
        run = RunStore(store_dir).import_trace(trace, name=name)
        out.put(run.id)
    except Exception as exc:  # reported to the parent
        out.put(f"error: {exc!r}")


def test_concurrent_imports_do_not_corrupt(tmp_path, synthetic_trace):
    """Four processes import at once (two distinct files, each twice): two runs, intact catalogue."""
    other = tmp_path / "other.sqlite"
    shutil.copyfile(synthetic_trace, other)
    con = sqlite3.connect(other)  # different content, still a valid trace
    con.execute("UPDATE TARGET_INFO_GPU SET name = 'Other GPU'")
    con.commit()
    con.close()
    store_dir = tmp_path / "store"
    store = RunStore(store_dir)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_import_worker, args=(str(store_dir), str(t), f"run{i}", out))
             for i, t in enumerate([synthetic_trace, other, synthetic_trace, other])]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert not [r for r in results if r.startswith("error")], results
    assert len(set(results)) == 2
    runs = store.list_runs()
    assert len(runs) == 2 and all(r.trace_path.exists() for r in runs)
    assert len(stored_files(store)) == 2  # no temporary files left behind
    con = sqlite3.connect(store.db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_concurrent_sessions_in_one_process(tmp_path, synthetic_trace):
    """Streamlit sessions are threads sharing one RunStore: parallel imports and removals stay consistent."""
    from concurrent.futures import ThreadPoolExecutor

    store = RunStore(tmp_path / "store")
    copies = []
    for i in range(4):
        p = tmp_path / f"t{i}.sqlite"
        shutil.copyfile(synthetic_trace, p)
        con = sqlite3.connect(p)
        con.execute("UPDATE TARGET_INFO_GPU SET name = ?", [f"GPU {i}"])
        con.commit()
        con.close()
        copies.append(p)
    keep = store.import_trace(copies[0], name="kept")
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda p: store.import_trace(p, name=p.stem), copies[1:] * 2))
        removed = pool.submit(store.remove, keep.id)
    assert removed.result()
    assert sorted({r.id for r in runs}) == sorted(r.id for r in store.list_runs())
    assert len(store.list_runs()) == 3 and len(stored_files(store)) == 3
    assert not keep.trace_path.exists()
