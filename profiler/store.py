"""The run catalogue: every run the dashboard can show (bundled samples, captured runs, uploads).

A run is one nsys trace plus what we know about it. The catalogue is a SQLite database (`catalogue.db`, via
sqlite-utils, WAL journal) in the store directory, with the trace files kept beside it in `traces/`, named
by the SHA-256 of their content. Layout:

    <store>/catalogue.db          table runs(id, name, source, created, trace_path, sha256, metadata, summary)
    <store>/traces/<sha256>.sqlite[.xz|.zst|.gz]

The store directory is `RunStore(path)`, else `$TRTSCOPE_HOME`, else the user's data directory
(`$XDG_DATA_HOME/trtscope`, by default `~/.local/share/trtscope`), never inside the installed package.

Guarantees:
- a file enters the catalogue only after `open_trace` + `summarize` succeeded on it (bad files raise
  TraceError with a one-line reason and leave the store untouched);
- trace files are written to a temporary name and renamed into place (`os.replace`), so a reader never sees
  half a file; catalogue changes run in `BEGIN IMMEDIATE` transactions, so two processes or browser sessions
  importing or removing at once serialise instead of corrupting each other;
- every call opens its own short-lived connection, so one RunStore may be shared between threads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from profiler.errors import TraceError
from profiler.trace.files import file_digest, sniff

SOURCES = ("bundled", "captured", "uploaded")
TRACE_FILE_NAMES = ("trace.sqlite", "trace.sqlite.xz", "trace.sqlite.zst", "trace.sqlite.gz", "trace.nsys-rep")
_SUFFIX_OF_KIND = {"sqlite": ".sqlite", "xz": ".sqlite.xz", "zst": ".sqlite.zst", "gz": ".sqlite.gz"}
_SCHEMA = {"id": str, "name": str, "source": str, "created": str, "trace_path": str, "sha256": str,
           "metadata": str, "summary": str}


def default_store_dir() -> Path:
    """$TRTSCOPE_HOME, else $XDG_DATA_HOME/trtscope, else ~/.local/share/trtscope."""
    if os.environ.get("TRTSCOPE_HOME"):
        return Path(os.environ["TRTSCOPE_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "trtscope"


@dataclass(frozen=True)
class Run:
    """One catalogue entry. `trace_path` is absolute; `metadata` is the run's metadata.json (or what the
    importer passed); `summary` is `profiler.analysis.summary.summarize()` of the trace at import time."""

    id: str
    name: str
    source: str
    created: str  # ISO 8601, UTC
    trace_path: Path
    sha256: str
    metadata: dict = field(default_factory=dict, hash=False, compare=False)
    summary: dict = field(default_factory=dict, hash=False, compare=False)

    def __str__(self) -> str:  # short and unique: usable as a cache key
        return f"{self.id}@{self.sha256[:16]}"

    @property
    def label(self) -> str:
        """How pickers show the run: its name, plus '· uploaded' / '· captured' when not bundled."""
        return self.name if self.source == "bundled" else f"{self.name} · {self.source}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "run"


def validate_trace(path: Path) -> dict:
    """Open and summarise a trace; returns the summary dict or raises TraceError with a one-line reason."""
    from profiler.analysis.summary import summarize
    from profiler.trace import open_trace

    try:
        with open_trace(path) as trace:
            try:
                return summarize(trace)
            except TraceError as exc:
                if trace.warnings:  # e.g. an older nsys schema whose kernel table lacks a needed column
                    raise TraceError(f"{exc} — {trace.warnings[0]} (an nsys version we cannot read?)") from None
                raise
    except TraceError:
        raise
    except MemoryError:
        raise TraceError(f"{path.name}: too large to analyse in this machine's memory") from None
    except (sqlite3.DatabaseError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise TraceError(f"{path.name}: not a usable nsys export ({type(exc).__name__}: {exc})") from None


_DTYPES = {"float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32", "float": "fp32",
           "float64": "fp64", "double": "fp64", "int8": "int8", "uint8": "uint8", "int32": "int32", "int64": "int64",
           "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "bool": "bool"}


def _precision_name(dtype) -> str | None:
    if not dtype:
        return None
    d = str(dtype).removeprefix("torch.").lower()
    return _DTYPES.get(d, d)


def layer_precisions(run_dir: str | os.PathLike) -> dict[str, str]:
    """Per-layer precision recorded by the harness, keyed by the layer's NVTX range text: the output dtype of
    each leaf module (torch runs, modules.json) or TensorRT's layer precision (layer_info.json). Empty when the
    run directory has neither or they cannot be read."""
    run_dir = Path(run_dir)
    out: dict[str, str] = {}
    try:
        if (run_dir / "modules.json").is_file():
            data = json.loads((run_dir / "modules.json").read_text())
            records = data.get("modules", []) if isinstance(data, dict) else data
            for rec in records:
                if isinstance(rec, dict) and rec.get("name") and _precision_name(rec.get("dtype")):
                    out[str(rec["name"])] = _precision_name(rec.get("dtype"))
        if (run_dir / "layer_info.json").is_file():
            from profiler.backends.layer_info import parse_layer_info

            for layer in parse_layer_info((run_dir / "layer_info.json").read_text())["layers"]:
                if layer.get("name") and layer.get("precision"):
                    out[str(layer["name"])] = str(layer["precision"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError, ImportError):
        return out
    return out


class RunStore:
    """The catalogue of runs in one directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.root = Path(path).expanduser() if path is not None else default_store_dir()
        self.db_path = self.root / "catalogue.db"
        self.trace_dir = self.root / "traces"
        self.incoming_dir = self.root / "incoming"
        for d in (self.root, self.trace_dir, self.incoming_dir):
            d.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.enable_wal()
            db["runs"].create(_SCHEMA, pk="id", not_null={"name", "source", "trace_path", "sha256"},
                              if_not_exists=True)
            db["runs"].create_index(["sha256"], if_not_exists=True)

    # ---- connections and transactions ---------------------------------------------------------------------
    @contextmanager
    def _connect(self):
        """A fresh connection (autocommit; transactions are explicit), closed afterwards."""
        conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 60000")
        try:
            yield sqlite_utils.Database(conn)
        finally:
            conn.close()

    @contextmanager
    def _write(self):
        """A write transaction: BEGIN IMMEDIATE takes the write lock first, so check-then-write is atomic."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ---- reading ------------------------------------------------------------------------------------------
    def _run(self, row: dict) -> Run:
        return Run(id=row["id"], name=row["name"], source=row["source"], created=row["created"] or "",
                   trace_path=self.root / row["trace_path"], sha256=row["sha256"],
                   metadata=json.loads(row["metadata"] or "{}"), summary=json.loads(row.get("summary") or "{}"))

    def list_runs(self, source: str | None = None, summaries: bool = True) -> list[Run]:
        """All runs (or those of one source): bundled first, then captured, then uploaded; by name.
        `summaries=False` leaves Run.summary empty (cheaper: what run pickers need)."""
        cols = [c for c in _SCHEMA if summaries or c != "summary"]
        with self._connect() as db:
            where, args = ("source = ?", [source]) if source is not None else (None, [])
            rows = list(db["runs"].rows_where(where, args, select=", ".join(cols)))
        order = {s: i for i, s in enumerate(SOURCES)}
        return sorted((self._run(r) for r in rows), key=lambda r: (order.get(r.source, 9), r.name.lower(), r.id))

    def get(self, run_id: str) -> Run:
        """The run with this id; KeyError when there is none."""
        with self._connect() as db:
            rows = list(db["runs"].rows_where("id = ?", [run_id]))
        if not rows:
            raise KeyError(run_id)
        return self._run(rows[0])

    def __contains__(self, run_id: str) -> bool:
        try:
            self.get(run_id)
        except KeyError:
            return False
        return True

    # ---- writing ------------------------------------------------------------------------------------------
    def import_trace(self, path: str | os.PathLike, name: str | None = None, source: str = "uploaded",
                     metadata: dict | None = None, run_id: str | None = None, move: bool = False) -> Run:
        """Validate a trace, copy it into the store and register it; returns the Run.

        `path` is an nsys export (.sqlite, .sqlite.xz/.zst/.gz, or .nsys-rep when nsys is installed). The file
        is opened and summarised first: a file that fails raises TraceError and nothing is stored. An upload
        of a file already in the catalogue (same content, same source) returns the existing run. `run_id`
        (default: '<source>-<sha prefix>') replaces an existing run of that id. `move` moves instead of copying
        (for temporary upload files in `incoming_dir`).
        """
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        src = Path(path)
        summary = validate_trace(src)  # raises TraceError; nothing has been written yet
        kind = sniff(src)
        if kind == "nsys-rep":  # keep the SQLite export, so opening the run later needs no nsys
            from profiler.trace.files import resolve_trace

            src, move, kind = resolve_trace(src), False, "sqlite"
        sha = file_digest(src)
        final = self.trace_dir / f"{sha}{_SUFFIX_OF_KIND.get(kind, '.sqlite')}"
        tmp = self.trace_dir / f".tmp-{uuid.uuid4().hex}"
        if not final.exists():  # write the bytes outside the lock (slow); rename inside it
            if move:
                shutil.move(str(src), tmp)
            else:
                shutil.copyfile(src, tmp)
        elif move:
            Path(src).unlink(missing_ok=True)
        run_id = run_id or f"{source}-{sha[:12]}"
        row = {"id": run_id, "name": name or src.name.split(".")[0], "source": source,
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "trace_path": str(final.relative_to(self.root)), "sha256": sha,
               "metadata": json.dumps(metadata or {}, default=str), "summary": json.dumps(summary, default=str)}
        try:
            with self._write() as db:
                if tmp.exists():
                    os.replace(tmp, final)
                existing = list(db["runs"].rows_where("id = ?", [run_id]))
                if existing and existing[0]["sha256"] == sha:
                    return self._run(existing[0])
                db.execute(
                    "INSERT OR REPLACE INTO runs (id, name, source, created, trace_path, sha256, metadata, summary)"
                    " VALUES (:id, :name, :source, :created, :trace_path, :sha256, :metadata, :summary)", row)
                if existing:
                    self._drop_unreferenced(db, existing[0]["trace_path"])
        finally:
            tmp.unlink(missing_ok=True)
        return self.get(run_id)

    def register_run_dir(self, run_dir: str | os.PathLike, source: str = "captured") -> Run | None:
        """Register a harness run directory (trace.sqlite[.xz], metadata.json...) as run '<source>-<dirname>'.

        Idempotent: a run whose stored trace has the same SHA-256 is left as it is. Returns None when the
        directory holds no trace file.
        """
        run_dir = Path(run_dir)
        trace = next((run_dir / n for n in TRACE_FILE_NAMES if (run_dir / n).is_file()), None)
        if trace is None:
            return None
        run_id = f"{source}-{_slug(run_dir.name)}"
        try:
            current = self.get(run_id)
        except KeyError:
            current = None
        if current is not None and current.trace_path.exists() and file_digest(trace) == current.sha256:
            return current
        metadata = {}
        meta_file = run_dir / "metadata.json"
        if meta_file.is_file():
            try:
                metadata = json.loads(meta_file.read_text())
            except (OSError, ValueError):
                metadata = {}
        metadata.setdefault("run_dir", str(run_dir.resolve()))  # where modules.json & co. live
        precisions = layer_precisions(run_dir)
        if precisions:
            metadata["layer_precision"] = precisions
        name = str(metadata.get("name") or run_dir.name)
        return self.import_trace(trace, name=name, source=source, metadata=metadata, run_id=run_id)

    def register_bundled(self, data_dir: str | os.PathLike) -> list[Run]:
        """Register every run directory under `data_dir` (e.g. data/samples) as a bundled run. Idempotent;
        a sample that fails validation is skipped (its reason is in the returned list's absence and logged
        in `self.skipped`)."""
        return self._register_dirs(data_dir, "bundled")

    def register_captured(self, runs_dir: str | os.PathLike) -> list[Run]:
        """Register every harness run directory under `runs_dir` (e.g. runs/) as a captured run."""
        return self._register_dirs(runs_dir, "captured")

    def _register_dirs(self, parent: str | os.PathLike, source: str) -> list[Run]:
        self.skipped: dict[str, str] = {}
        out = []
        parent = Path(parent)
        if not parent.is_dir():
            return out
        for d in sorted(p for p in parent.iterdir() if p.is_dir()):
            try:
                run = self.register_run_dir(d, source)
            except TraceError as exc:
                self.skipped[str(d)] = str(exc)
                continue
            if run is not None:
                out.append(run)
        return out

    def remove(self, run_id: str) -> bool:
        """Remove a run from the catalogue (and its trace file when no other run uses it). False if absent."""
        with self._write() as db:
            rows = list(db["runs"].rows_where("id = ?", [run_id]))
            if not rows:
                return False
            db.execute("DELETE FROM runs WHERE id = ?", [run_id])
            self._drop_unreferenced(db, rows[0]["trace_path"])
        return True

    def _drop_unreferenced(self, db: sqlite_utils.Database, trace_path: str) -> None:
        """Inside a write transaction: delete a stored trace file that no run refers to any more."""
        (count,) = db.execute("SELECT count(*) FROM runs WHERE trace_path = ?", [trace_path]).fetchone()
        if count == 0:
            (self.root / trace_path).unlink(missing_ok=True)

    def new_incoming_path(self, filename: str) -> Path:
        """A fresh path for an upload being written: a new folder in the store's incoming/ directory (same
        filesystem as traces/, so import_trace(move=True) is a rename) holding the file under its own name,
        so messages about it name what the user uploaded. Remove it with discard_incoming()."""
        folder = self.incoming_dir / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder / (_slug(Path(filename).name) or "upload")

    def discard_incoming(self, path: str | os.PathLike) -> None:
        """Delete an upload's incoming folder (after import_trace moved the file, or after it failed)."""
        folder = Path(path).parent
        if folder.parent == self.incoming_dir:
            shutil.rmtree(folder, ignore_errors=True)
