"""Read an Nsight Systems SQLite export into pandas frames, one per kind of event.

Each table is read on first use with only the columns it needs, names resolved through StringIds and the
ENUM_* tables. Columns missing from older nsys schemas become NA and are listed in `Trace.warnings`; a
missing optional table becomes an empty frame with the same columns. All times are ns on the trace's clock.

Frames (column names are the contract the analyses rely on):
- kernels: start, end, duration_ns, device_id, context_id, stream_id, correlation_id, global_pid, name
  (demangled, categorical); launch configuration row for row in `kernel_launches`
- memcpy: start, end, duration_ns, device_id, stream_id, correlation_id, global_pid, bytes, operation
  ("Host-to-Device", ...), src_kind / dst_kind ("Pageable", "Pinned", "Device", ...), src_device_id, dst_device_id
- memset: start, end, duration_ns, device_id, stream_id, correlation_id, global_pid, bytes, value, mem_kind
- api: start, end, duration_ns, global_tid, correlation_id, name (version suffix such as `_v7000` removed),
  api ("runtime" or "driver"), return_value
- nvtx: range_id (row number in the export's table order), start, end, duration_ns, text, domain, style ("PushPop" / "StartEnd"), global_tid,
  depth (0 = outermost on its thread), parent (range_id or -1)
- gpu_metrics: timestamp, metric, value, gpu (typeId)
"""

from __future__ import annotations

import re
import sqlite3
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from profiler.errors import TraceError
from profiler.trace.files import resolve_trace

KERNEL = "CUPTI_ACTIVITY_KIND_KERNEL"
MEMCPY = "CUPTI_ACTIVITY_KIND_MEMCPY"
MEMSET = "CUPTI_ACTIVITY_KIND_MEMSET"
RUNTIME = "CUPTI_ACTIVITY_KIND_RUNTIME"
DRIVER = "CUPTI_ACTIVITY_KIND_DRIVER"
NVTX = "NVTX_EVENTS"

# Fallback labels when an export lacks the ENUM_* tables (values as in nsys 2025.3's enums).
MEMCPY_KIND_LABELS = {
    0: "Unknown", 1: "Host-to-Device", 2: "Device-to-Host", 3: "Host-to-Array", 4: "Array-to-Host",
    5: "Array-to-Array", 6: "Array-to-Device", 7: "Device-to-Array", 8: "Device-to-Device",
    9: "Host-to-Host", 10: "Peer-to-Peer", 11: "Unified Host-to-Device", 12: "Unified Device-to-Host",
    13: "Unified Device-to-Device",
}
MEM_KIND_LABELS = {
    0: "Pageable", 1: "Pinned", 2: "Device", 3: "Array", 4: "Managed", 5: "Device Static",
    6: "Managed Static", 7: "Unknown",
}
NVTX_PUSHPOP, NVTX_STARTEND, NVTX_DOMAIN_CREATE = 59, 60, 75
NVTX_STYLES = {NVTX_PUSHPOP: "PushPop", NVTX_STARTEND: "StartEnd"}
_API_VERSION_SUFFIX = re.compile(r"_v\d+$")

# An nsys export has at least one of these; anything else is someone else's SQLite database.
_NSYS_MARKERS = ("StringIds", KERNEL, MEMCPY, RUNTIME, NVTX, "TARGET_INFO_GPU")


@lru_cache(maxsize=1)
def _duckdb_sqlite_scanner():
    """DuckDB plus the SQLite scanner extension from PyPI (`duckdb-extension-sqlite-scanner`), or None.

    Bulk reads go through DuckDB into Arrow: measured 3-6x faster than sqlite3 row fetching on a
    1M-kernel export (NOTES.md). Nothing is ever downloaded: the extension is loaded from its wheel.
    """
    try:
        import duckdb
        import duckdb_extension_sqlite_scanner as ext
    except ImportError:
        return None
    root = Path(ext.__file__).parent / "extensions"
    found = sorted(root.glob("v*/sqlite_scanner.duckdb_extension"))
    if not found:
        return None
    return duckdb, str(found[-1])


def categorical(codes: np.ndarray, labels: list) -> pd.Categorical:
    """A categorical from integer codes into `labels` (labels may repeat: they are merged; -1 is NA)."""
    label_codes, uniques = pd.factorize(np.asarray(labels, dtype=object))
    codes = np.asarray(codes)
    mapped = np.where(codes >= 0, label_codes[np.maximum(codes, 0)], -1) if len(label_codes) else codes
    return pd.Categorical.from_codes(mapped, categories=pd.Index(uniques, dtype=object))


def global_pid(global_tid: pd.Series) -> pd.Series:
    """nsys packs the process id above the low 24 bits of a globalTid; this is the globalPid of a thread."""
    values = global_tid.to_numpy().astype(np.int64)
    return pd.Series((values >> 24) << 24, index=global_tid.index)


class Trace:
    """An opened nsys export: frames are read lazily, read-only, and cached on the object."""

    def __init__(self, path: str | Path):
        self.source = Path(path)
        self.path = resolve_trace(path)
        self.warnings: list[str] = []
        uri = f"file:{self.path.resolve()}?mode=ro&immutable=1"
        try:
            self._con = sqlite3.connect(uri, uri=True, check_same_thread=False)
            rows = self._con.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')").fetchall()
        except sqlite3.DatabaseError as exc:
            raise TraceError(f"{self.source.name}: not a readable SQLite database ({exc})") from None
        self.tables = {name for (name,) in rows}
        if not any(t in self.tables for t in _NSYS_MARKERS):
            raise TraceError(
                f"{self.source.name}: a SQLite database, but not an Nsight Systems export "
                "(no StringIds, CUPTI_ACTIVITY_KIND_* or NVTX_EVENTS tables)"
            )
        self._columns: dict[str, set[str]] = {}
        self._duck = None

    def close(self) -> None:
        self._con.close()
        if self._duck is not None:
            self._duck.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- low-level helpers -------------------------------------------------------------------------------
    def columns(self, table: str) -> set[str]:
        if table not in self._columns:
            rows = self._con.execute(f"PRAGMA table_info('{table}')").fetchall() if table in self.tables else []
            self._columns[table] = {r[1] for r in rows}
        return self._columns[table]

    def query(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        """Run SQL on the export; corrupt pages become a TraceError with a one-line reason."""
        try:
            cur = self._con.execute(sql, params)
            names = [d[0] for d in cur.description]
            return pd.DataFrame.from_records(cur.fetchall(), columns=names)
        except sqlite3.DatabaseError as exc:
            raise TraceError(f"{self.source.name}: the export is damaged or truncated ({exc})") from None

    def frame(self, sql: str) -> pd.DataFrame:
        """Run a bulk SELECT (table names as in the export) through DuckDB's SQLite scanner into pandas;
        falls back to sqlite3 where DuckDB or its extension is not installed."""
        scanner = _duckdb_sqlite_scanner()
        if scanner is None:
            return self.query(sql)
        duckdb, extension = scanner
        try:
            if self._duck is None:
                con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False})
                con.execute(f"LOAD '{extension}'")
                con.execute("SET GLOBAL sqlite_all_varchar = false")
                con.execute("SET enable_progress_bar = false")
                con.execute(f"ATTACH '{self.path.resolve()}' AS nsys (TYPE sqlite, READ_ONLY)")
                con.execute("USE nsys")
                self._duck = con
            return _batches_to_frame(self._duck.execute(sql).to_arrow_reader(BATCH_ROWS))
        except duckdb.Error as exc:
            if "malformed" in str(exc) or "corrupt" in str(exc) or "disk image" in str(exc):
                raise TraceError(f"{self.source.name}: the export is damaged or truncated ({exc})") from None
            return self.query(sql)  # a type DuckDB cannot map: sqlite3 reads anything SQLite stores

    def _select(self, table: str, wanted: dict[str, str], required: tuple[str, ...]) -> pd.DataFrame | None:
        """SELECT the wanted {output: source column} that exist; None if the table or a required column is absent."""
        have = self.columns(table)
        if table not in self.tables:
            self.warnings.append(f"no {table} table (none captured, or not traced): its tables are empty")
            return None
        missing_required = [c for c in required if wanted[c] not in have]
        if missing_required:
            self.warnings.append(f"{table} lacks {', '.join(wanted[c] for c in missing_required)}: table skipped")
            return None
        parts = []
        for out, src in wanted.items():
            if src in have:
                parts.append(f'"{src}" AS {out}')
            else:
                parts.append(f"NULL AS {out}")
                if out not in required:
                    self.warnings.append(f"{table}.{src} is missing (older nsys schema): {out} left empty")
        return self.frame(f"SELECT {', '.join(parts)} FROM {table}")

    def strings(self, ids) -> dict[int, str]:
        """StringIds values for the given ids."""
        ids = [int(i) for i in pd.unique(pd.Series(ids).dropna())]
        if not ids or "StringIds" not in self.tables:
            return {}
        out: dict[int, str] = {}
        for i in range(0, len(ids), 30000):
            chunk = ids[i : i + 30000]
            marks = ",".join("?" * len(chunk))
            out.update(self._con.execute(f"SELECT id, value FROM StringIds WHERE id IN ({marks})", chunk).fetchall())
        return out

    def _names(self, ids: pd.Series) -> pd.Categorical:
        """Map StringIds ids to a categorical of their strings (unknown ids become '<unknown>')."""
        codes, uniques = pd.factorize(ids, use_na_sentinel=True)
        lookup = self.strings(uniques)
        return categorical(codes, [lookup.get(int(u), f"<string {int(u)}>") for u in uniques])

    def _enum(self, table: str, fallback: dict[int, str]) -> dict[int, str]:
        if table in self.tables and {"id", "label"} <= self.columns(table):
            return dict(self._con.execute(f"SELECT id, label FROM {table}").fetchall())
        return fallback

    @staticmethod
    def _finish(df: pd.DataFrame) -> pd.DataFrame:
        df["duration_ns"] = (df["end"] - df["start"]).astype("int64")
        return df

    # ---- frames ------------------------------------------------------------------------------------------
    @cached_property
    def kernels(self) -> pd.DataFrame:
        wanted = {
            "start": "start", "end": "end", "device_id": "deviceId", "context_id": "contextId",
            "stream_id": "streamId", "correlation_id": "correlationId", "global_pid": "globalPid",
            "name_id": "demangledName",
        }
        df = self._select(KERNEL, wanted, ("start", "end", "name_id"))
        if df is None:
            return _empty([c for c in wanted if c != "name_id"] + ["name", "duration_ns"])
        df["name"] = self._names(df.pop("name_id"))
        return self._finish(df)

    @cached_property
    def kernel_launches(self) -> pd.DataFrame:
        """Launch configuration of each kernel, row for row with `kernels`: short_name, grid_x/y/z,
        block_x/y/z, registers (per thread), static_smem / dynamic_smem (bytes per block)."""
        wanted = {"short_id": "shortName", "grid_x": "gridX", "grid_y": "gridY", "grid_z": "gridZ",
                  "block_x": "blockX", "block_y": "blockY", "block_z": "blockZ", "registers": "registersPerThread",
                  "static_smem": "staticSharedMemory", "dynamic_smem": "dynamicSharedMemory"}
        df = self._select(KERNEL, wanted, ())
        if df is None:
            return _empty(["short_name"] + [c for c in wanted if c != "short_id"])
        short = df.pop("short_id")
        df.insert(0, "short_name", self._names(short) if short.notna().any() else self.kernels["name"].array)
        return df

    @cached_property
    def memcpy(self) -> pd.DataFrame:
        wanted = {
            "start": "start", "end": "end", "device_id": "deviceId", "stream_id": "streamId",
            "correlation_id": "correlationId", "global_pid": "globalPid", "bytes": "bytes",
            "copy_kind": "copyKind", "src_kind_id": "srcKind", "dst_kind_id": "dstKind",
            "src_device_id": "srcDeviceId", "dst_device_id": "dstDeviceId",
        }
        df = self._select(MEMCPY, wanted, ("start", "end", "bytes", "copy_kind"))
        cols = ["start", "end", "device_id", "stream_id", "correlation_id", "global_pid", "bytes", "operation",
                "src_kind", "dst_kind", "src_device_id", "dst_device_id", "duration_ns"]
        if df is None:
            return _empty(cols)
        ops = self._enum("ENUM_CUDA_MEMCPY_OPER", MEMCPY_KIND_LABELS)
        kinds = self._enum("ENUM_CUDA_MEM_KIND", MEM_KIND_LABELS)
        df["operation"] = df.pop("copy_kind").map(ops).fillna("Unknown").astype("category")
        df["src_kind"] = df.pop("src_kind_id").map(kinds).astype("category")
        df["dst_kind"] = df.pop("dst_kind_id").map(kinds).astype("category")
        return self._finish(df)[cols]

    @cached_property
    def memset(self) -> pd.DataFrame:
        wanted = {
            "start": "start", "end": "end", "device_id": "deviceId", "stream_id": "streamId",
            "correlation_id": "correlationId", "global_pid": "globalPid", "bytes": "bytes", "value": "value",
            "mem_kind_id": "memKind",
        }
        df = self._select(MEMSET, wanted, ("start", "end", "bytes"))
        if df is None:
            return _empty([c for c in wanted if c != "mem_kind_id"] + ["mem_kind", "duration_ns"])
        df["mem_kind"] = df.pop("mem_kind_id").map(self._enum("ENUM_CUDA_MEM_KIND", MEM_KIND_LABELS))
        return self._finish(df)

    @cached_property
    def api(self) -> pd.DataFrame:
        """CUDA runtime and driver API calls (the calls that launch GPU work, synchronize, copy...)."""
        wanted = {"start": "start", "end": "end", "global_tid": "globalTid", "correlation_id": "correlationId",
                  "name_id": "nameId", "return_value": "returnValue"}
        frames = []
        for table, kind in ((RUNTIME, "runtime"), (DRIVER, "driver")):
            if table not in self.tables and table == DRIVER:
                continue  # driver tracing is optional; its absence is normal
            df = self._select(table, wanted, ("start", "end", "global_tid", "correlation_id", "name_id"))
            if df is not None:
                df["api"] = pd.Categorical.from_codes(np.full(len(df), kind == "driver", dtype=np.int8),
                                                      categories=["runtime", "driver"])
                frames.append(df)
        cols = ["start", "end", "global_tid", "correlation_id", "name", "api", "return_value", "duration_ns"]
        if not frames:
            return _empty(cols)
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        raw = self._names(df.pop("name_id"))
        df["name"] = categorical(raw.codes, [_API_VERSION_SUFFIX.sub("", str(c)) for c in raw.categories])
        return self._finish(df)[cols]

    @cached_property
    def nvtx(self) -> pd.DataFrame:
        """NVTX ranges (push/pop and start/end) with domain names, nesting depth and parent range."""
        cols = ["range_id", "start", "end", "duration_ns", "text", "domain", "style", "global_tid", "depth",
                "parent"]
        if NVTX not in self.tables:
            self.warnings.append(f"table {NVTX} is missing: no NVTX ranges (stages and layers are empty)")
            return _empty(cols)
        have = self.columns(NVTX)
        if not {"start", "end", "eventType"} <= have:
            self.warnings.append(f"{NVTX} lacks start/end/eventType: no NVTX ranges")
            return _empty(cols)
        text = "text" if "text" in have else "NULL"
        text_id = "textId" if "textId" in have else "NULL"
        domain = "domainId" if "domainId" in have else "0"
        tid = "globalTid" if "globalTid" in have else "0"
        domains = dict(self.query(f"SELECT {domain}, {text} FROM {NVTX} WHERE eventType = {NVTX_DOMAIN_CREATE}"
                                  ).itertuples(index=False, name=None))
        df = self.frame(
            f'SELECT start, "end", eventType AS event_type, {text} AS text, '
            f"{text_id} AS text_id, {domain} AS domain_id, {tid} AS global_tid FROM {NVTX} "
            f'WHERE eventType IN ({NVTX_PUSHPOP}, {NVTX_STARTEND}) AND "end" IS NOT NULL'
        )
        domain_codes, domain_ids = pd.factorize(df["domain_id"])
        df = pd.DataFrame({
            "range_id": np.arange(len(df), dtype=np.int64), "start": df["start"].to_numpy(np.int64),
            "end": df["end"].to_numpy(np.int64), "text": self._nvtx_text(df["text"], df["text_id"]),
            "domain": categorical(domain_codes, [domains.get(d) or "" for d in domain_ids]),
            "style": pd.Categorical.from_codes((df["event_type"].to_numpy() == NVTX_STARTEND).astype(np.int8),
                                               categories=["PushPop", "StartEnd"]),
            "global_tid": df["global_tid"].fillna(0).to_numpy(np.int64),
        })
        df = self._finish(df)
        df = df.sort_values(["global_tid", "start", "end"], ascending=[True, True, False], kind="stable")
        df["depth"], df["parent"] = nest_ranges(df["global_tid"].to_numpy(), df["start"].to_numpy(),
                                                df["end"].to_numpy(), df["range_id"].to_numpy())
        return df.reset_index(drop=True)[cols]

    def _nvtx_text(self, inline: pd.Series, text_id: pd.Series) -> pd.Categorical:
        """Range texts as a categorical: inline text where present, else StringIds[textId], else ''."""
        has_inline = inline.notna().to_numpy()
        id_codes, ids = pd.factorize(text_id.where(~has_inline), use_na_sentinel=True)
        lookup = self.strings(ids)
        labels_ids = [lookup.get(int(i), "") for i in ids]
        text_codes, texts = pd.factorize(inline, use_na_sentinel=True)
        labels = labels_ids + list(texts) + [""]
        codes = np.where(has_inline, text_codes + len(labels_ids), id_codes)
        return categorical(np.where(codes < 0, len(labels) - 1, codes), labels)

    @cached_property
    def gpu_metrics(self) -> pd.DataFrame:
        """GPU metrics samples (e.g. 'Tensor Active [Throughput %]'), when the capture sampled them."""
        cols = ["timestamp", "metric", "value", "gpu"]
        if "GPU_METRICS" not in self.tables or "TARGET_INFO_GPU_METRICS" not in self.tables:
            return _empty(cols)
        names = self.query("SELECT DISTINCT metricId, metricName FROM TARGET_INFO_GPU_METRICS")
        df = self.frame("SELECT timestamp, typeId AS gpu, metricId AS metric_id, value FROM GPU_METRICS")
        lookup = dict(zip(names["metricId"], names["metricName"]))  # metric ids name the same metric per GPU
        ids = df.pop("metric_id").astype("category")
        df["metric"] = ids.cat.rename_categories([lookup.get(i, f"metric {i}") for i in ids.cat.categories])
        return df[cols]

    def gpu_metric(self, name: str = "Tensor Active [Throughput %]") -> pd.DataFrame:
        """One metric's samples: timestamp (ns), value."""
        m = self.gpu_metrics
        return m.loc[m["metric"] == name, ["timestamp", "value", "gpu"]].reset_index(drop=True)

    @cached_property
    def device(self) -> dict:
        """The first GPU's description from TARGET_INFO_GPU (name, SM count, clock, memory bandwidth...)."""
        if "TARGET_INFO_GPU" not in self.tables:
            self.warnings.append("TARGET_INFO_GPU is missing: device unknown")
            return {"name": "unknown GPU"}
        df = self.query("SELECT * FROM TARGET_INFO_GPU")
        if df.empty:
            return {"name": "unknown GPU"}
        row = df.iloc[0]
        keys = {"name": "name", "id": "id", "chipName": "chip", "smCount": "sm_count", "clockRate": "clock_hz",
                "memoryBandwidth": "memory_bandwidth_bytes_per_s", "totalMemory": "total_memory_bytes",
                "l2CacheSize": "l2_cache_bytes", "computeMajor": "compute_major", "computeMinor": "compute_minor",
                "busLocation": "bus"}
        out = {new: _plain(row[old]) for old, new in keys.items() if old in row.index}
        out["devices"] = int(len(df))
        return out

    @cached_property
    def metadata(self) -> dict:
        """Export metadata (nsys version, schema version) when the export records it."""
        if "META_DATA_EXPORT" not in self.tables:
            return {}
        return dict(self._con.execute("SELECT name, value FROM META_DATA_EXPORT").fetchall())

    @cached_property
    def gpu_ops(self) -> pd.DataFrame:
        """Kernels, copies and memsets in one frame: kind, name, start, end, duration_ns, stream_id,
        device_id, correlation_id, global_pid, bytes (NA for kernels)."""
        k, c, s = self.kernels, self.memcpy, self.memset
        cols = ["start", "end", "duration_ns", "device_id", "stream_id", "correlation_id", "global_pid"]
        parts = [
            k[cols].assign(kind="kernel", name=k["name"]),
            c[cols].assign(kind="memcpy", name=("[CUDA memcpy " + c["operation"].astype(str) + "]").astype("category"),
                           bytes=c["bytes"]),
            s[cols].assign(kind="memset", name=pd.Categorical(["[CUDA memset]"] * len(s)), bytes=s["bytes"]),
        ]
        parts = [p for p in parts if len(p)]
        if not parts:
            return _empty(cols + ["kind", "name", "bytes"])
        names = union_categoricals([_object_categories(p["name"]) for p in parts], ignore_order=True)
        df = pd.concat([p.drop(columns="name") for p in parts], ignore_index=True)
        df["name"] = names
        df["kind"] = df["kind"].astype("category")
        return df.sort_values("start", kind="stable").reset_index(drop=True)


def nest_ranges(tid: np.ndarray, start: np.ndarray, end: np.ndarray, ids: np.ndarray):
    """Depth and parent id of each range, given ranges sorted by (tid, start asc, end desc).

    A range's parent is the innermost range on the same thread that is open when it starts and ends no
    earlier than it ends. Push/pop ranges nest properly, so depth = ranges started before it on its thread
    minus those ended by its start, and its parent is the last earlier range one level up (vectorised).
    Start/end ranges may overlap partly; threads where that happens are resolved by a stack walk.
    Returns (depth int64, parent id int64 with -1 for none).
    """
    n = len(start)
    depth = np.zeros(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return depth, parent
    bounds = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        s, e = start[lo:hi], end[lo:hi]
        d = np.arange(hi - lo) - np.searchsorted(np.sort(e), s, side="right")
        p = np.full(hi - lo, -1, dtype=np.int64)
        order = np.argsort(d, kind="stable")  # positions grouped by depth, ascending within a depth
        d_sorted = d[order]
        for level in range(1, int(d.max()) + 1 if len(d) else 0):
            here = order[np.searchsorted(d_sorted, level):np.searchsorted(d_sorted, level, side="right")]
            above = order[np.searchsorted(d_sorted, level - 1):np.searchsorted(d_sorted, level - 1, side="right")]
            if len(here) and len(above):
                k = np.searchsorted(above, here) - 1
                p[here] = np.where(k >= 0, above[np.maximum(k, 0)], -1)
        ok = (p < 0) | ((e[np.maximum(p, 0)] >= e) & (s[np.maximum(p, 0)] <= s))
        if (d < 0).any() or not ok.all() or ((d > 0) & (p < 0)).any():
            d, p = _nest_by_stack(s, e)
        depth[lo:hi] = d
        parent[lo:hi] = np.where(p >= 0, ids[lo:hi][np.maximum(p, 0)], -1)
    return depth, parent


def _nest_by_stack(start: np.ndarray, end: np.ndarray):
    """Depth and parent position for one thread's ranges (sorted by start asc, end desc), any overlap."""
    n = len(start)
    depth = np.zeros(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    stack: list[int] = []
    for i in range(n):
        s, e = start[i], end[i]
        while stack and end[stack[-1]] <= s:
            stack.pop()
        j = len(stack) - 1
        while j >= 0 and end[stack[j]] < e:  # partly overlapping start/end ranges: find a true container
            j -= 1
        if j >= 0:
            depth[i] = depth[stack[j]] + 1
            parent[i] = stack[j]
        stack.append(i)
    return depth, parent


BATCH_ROWS = 1 << 20


def _batches_to_frame(reader) -> pd.DataFrame:
    """Arrow record batches into one frame; text columns are dictionary-encoded batch by batch (Arrow), so a
    column of millions of repeated names never exists as millions of strings, and arrive as categoricals."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = []
    for batch in reader:
        table = _binary_as_text(pa.Table.from_batches([batch]))
        for i, f in enumerate(table.schema):
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
                table = table.set_column(i, f.name, pc.dictionary_encode(table.column(i)))
        tables.append(table)
    if not tables:
        return pd.DataFrame({f.name: pd.Series(dtype=object) for f in reader.schema})
    df = pa.concat_tables(tables).unify_dictionaries().to_pandas()
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = _object_categories(df[col])
    return df


def _binary_as_text(table):
    """SQLite columns declared without a type arrive from DuckDB as BLOB: read them as UTF-8 text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type):
            try:
                col = pc.cast(table.column(i), pa.string())
            except pa.ArrowInvalid:  # not valid UTF-8: decode leniently
                col = pa.array([None if v is None else v.decode("utf-8", "replace")
                                for v in table.column(i).to_pylist()], pa.string())
            table = table.set_column(i, f.name, col)
    return table


def _object_categories(values: pd.Series) -> pd.Categorical:
    """The same categorical with object-dtype categories (so categoricals from any source can be unioned)."""
    cat = values.astype("category").array
    return pd.Categorical.from_codes(cat.codes, categories=pd.Index(list(cat.categories), dtype=object))


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _empty(cols: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c not in ("name", "text", "operation") else object)
                         for c in cols})


def open_trace(path: str | Path) -> Trace:
    """Open an nsys export (.sqlite, compressed, or .nsys-rep) for reading; raises TraceError on bad input."""
    return Trace(path)
