"""Shared helpers for the dashboard's pages: the run store, the current run, cached analyses, formatting.

Conventions for page authors (every page in app/pages/ follows them):

- Pages are plain scripts run by `st.navigation` in app/Home.py; they import `common` and `charts` as
  top-level modules (Home.py puts app/ and the repository root on sys.path; `app.common` is the same module)
  and `profiler` as usual.
- The current run: `run = common.require_run()` returns the `profiler.store.Run` picked in the sidebar (the
  picker lives in Home.py and stores its id in `st.session_state["run_id"]`, mirrored in the URL as
  `?run=<id>`); it stops the page with a message when the catalogue is empty.
- Its analysis: `a = common.load_analysis(run)` returns the `profiler.analysis.summary.Analysis`, computed once
  per trace file and shared by all sessions (`st.cache_resource`, keyed by the file's SHA-256). Treat it as
  read-only. `common.load_trace(run)` gives the `Trace` alone (cheaper for large traces: the timeline uses it).
  A trace that cannot be read shows its one-line TraceError with `st.error` and stops the page.
- Figures: build every Plotly figure with a pure function in app/charts.py (frames in, figure out); pages
  only lay out what `profiler/` computed.
- Jump to a time window on the Timeline page from any page:
      st.session_state["timeline_window"] = (start_ns, end_ns)   # trace clock, ns
      st.switch_page("pages/timeline.py")
  or `common.jump_to_timeline(start_ns, end_ns)`, or `common.timeline_button(label, start_ns, end_ns, key)`.
- Formatting: `fmt_ns`, `fmt_ms`, `fmt_pct`, `fmt_bytes`, `short_kernel_name` (readable kernel names).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from profiler.errors import TraceError
from profiler.store import Run, RunStore

# Pages may import this module as `common` or as `app.common`: make both names one module (one set of caches).
sys.modules.setdefault("app.common", sys.modules[__name__])
sys.modules.setdefault("common", sys.modules[__name__])

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_DIR = REPO_ROOT / "app"
TIMELINE_PAGE = "pages/timeline.py"
RUN_KEY = "run_id"
PENDING_RUN_KEY = "pending_run_id"
WINDOW_KEY = "timeline_window"


def samples_dir() -> Path:
    """Bundled runs: $TRTSCOPE_SAMPLES, else data/samples in the repository."""
    return Path(os.environ.get("TRTSCOPE_SAMPLES") or REPO_ROOT / "data" / "samples")


def captured_dir() -> Path:
    """Runs captured with `python -m profiler run` (default out dir runs/): $TRTSCOPE_RUNS, else runs/."""
    return Path(os.environ.get("TRTSCOPE_RUNS") or REPO_ROOT / "runs")


def _leave_pages_directory_mode() -> None:
    """Make a page opened by URL on a fresh server run under Home.py's navigation.

    Because app/pages/ exists, Streamlit runs a new server's first script run in its old "pages directory"
    mode until some script calls st.navigation: a first request for /timeline would run pages/timeline.py
    alone (no Home.py: no run picker, wrong page list). Pages call this (through get_store / current_run);
    it leaves that mode and reruns, so Home.py runs and its st.navigation opens the requested page.
    Not under Streamlit's AppTest, which starts every run in that mode (the rerun would swallow button clicks);
    there a switched-to page runs without Home.py.
    """
    if "streamlit.testing.v1" in sys.modules:
        return
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without this internal: nothing to fix
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


# ---- the store --------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _store(root: str | None) -> RunStore:
    return RunStore(root)


def get_store() -> RunStore:
    """The run catalogue ($TRTSCOPE_HOME or the user data dir), shared by all sessions."""
    _leave_pages_directory_mode()
    return _store(os.environ.get("TRTSCOPE_HOME"))


@st.cache_resource(show_spinner="Registering the bundled and captured runs…")
def _register(root: str | None, samples: str, captured: str) -> dict:
    store = _store(root)
    store.register_bundled(samples)
    skipped = dict(store.skipped)
    store.register_captured(captured)
    skipped.update(store.skipped)
    return skipped


def register_known_runs() -> dict:
    """Register data/samples/* and runs/* once per server process (idempotent); returns {dir: reason}
    for directories that were skipped because their trace cannot be read."""
    return _register(os.environ.get("TRTSCOPE_HOME"), str(samples_dir()), str(captured_dir()))


# ---- the current run --------------------------------------------------------------------------------------
def run_picker() -> Run | None:
    """The sidebar's run picker; keeps the choice in st.session_state["run_id"] and the URL's ?run=."""
    runs = get_store().list_runs(summaries=False)
    if not runs:
        st.sidebar.info("No runs yet: upload an nsys export on the Upload page.")
        st.session_state.pop(RUN_KEY, None)
        return None
    ids = [r.id for r in runs]
    by_id = {r.id: r for r in runs}
    pending = st.session_state.pop(PENDING_RUN_KEY, None)
    if pending in by_id:
        st.session_state["run_picker"] = pending
    elif st.session_state.get("run_picker") not in by_id:
        wanted = st.session_state.get(RUN_KEY) or st.query_params.get("run")
        st.session_state["run_picker"] = wanted if wanted in by_id else ids[0]
    choice = st.sidebar.selectbox("Run", ids, format_func=lambda i: by_id[i].label, key="run_picker",
                                  help="Bundled samples, your captures and your uploads")
    st.session_state[RUN_KEY] = choice
    if st.query_params.get("run") != choice:
        st.query_params["run"] = choice
    return by_id[choice]


def select_run(run_id: str) -> None:
    """Make `run_id` the current run (the sidebar picker follows on the next rerun) and rerun."""
    st.session_state[PENDING_RUN_KEY] = run_id
    st.session_state[RUN_KEY] = run_id
    st.rerun()


def current_run() -> Run | None:
    """The run picked in the sidebar (None when the catalogue is empty)."""
    _leave_pages_directory_mode()
    run_id = st.session_state.get(RUN_KEY)
    if not run_id:
        return None
    try:
        return get_store().get(run_id)
    except KeyError:
        return None


def pick_run() -> Run | None:
    """The current run (the picker itself is in the sidebar, drawn by Home.py on every page)."""
    return current_run()


def require_run() -> Run:
    """The current run, or a message and st.stop() when there is none."""
    run = current_run()
    if run is None:
        st.info("No run selected. Upload an nsys export on the **Upload** page, or add runs under data/samples.")
        st.stop()
    return run


# ---- cached trace and analysis (keyed by the trace file's SHA-256) -----------------------------------------
@st.cache_resource(max_entries=6, show_spinner="Reading the trace…")
def _trace(sha256: str, path: str):
    from profiler.trace import open_trace

    return open_trace(path)


@st.cache_resource(max_entries=6, show_spinner="Analysing the trace…")
def _analysis(sha256: str, path: str):
    from profiler.analysis.summary import analyze

    return analyze(_trace(sha256, path))


@st.cache_resource(max_entries=6, show_spinner="Looking for wasteful memory copies…")
def _copy_findings(sha256: str, path: str) -> list:
    try:
        from profiler.analysis.copies import copy_findings
    except ImportError:
        return []
    return copy_findings(_analysis(sha256, path))


@st.cache_resource(max_entries=6, show_spinner=False)
def _layer_ranges(sha256: str, path: str):
    from profiler.analysis.layers import layer_ranges

    return layer_ranges(_trace(sha256, path).nvtx)


@st.cache_resource(max_entries=6, show_spinner="Preparing the timeline…")
def _timeline_source(sha256: str, path: str, max_nvtx_depth: int | None):
    from profiler.analysis.timeline import timeline_source

    t = _trace(sha256, path)
    return timeline_source(t.gpu_ops, t.nvtx, max_nvtx_depth)


def _guard(fn, run: Run, *args):
    """Call a cached loader; a bad trace shows its one-line reason and stops the page (no traceback)."""
    try:
        return fn(run.sha256, str(run.trace_path), *args)
    except TraceError as exc:
        st.error(f"The trace of run “{run.name}” cannot be read: {exc}")
        st.stop()
    except MemoryError:
        st.error("This trace is too large to analyse in this machine's memory.")
        st.stop()


def load_trace(run: Run):
    """The run's Trace (opened once per file; shared, read-only)."""
    return _guard(_trace, run)


def load_analysis(run: Run):
    """The run's Analysis (computed once per file; shared, read-only)."""
    return _guard(_analysis, run)


def load_copy_findings(run: Run) -> list:
    """profiler.analysis.copies.copy_findings of the run (empty when that module is absent)."""
    return _guard(_copy_findings, run)


def load_layer_ranges(run: Run):
    """profiler.analysis.layers.layer_ranges of the run's NVTX ranges (for kernels_of_layer drill-downs)."""
    return _guard(_layer_ranges, run)


def load_timeline_source(run: Run, max_nvtx_depth: int | None = None):
    """profiler.analysis.timeline.timeline_source of the run's trace (cached per file and depth)."""
    return _guard(_timeline_source, run, max_nvtx_depth)


# ---- navigation ---------------------------------------------------------------------------------------------
def jump_to_timeline(start_ns: int, end_ns: int) -> None:
    """Open the Timeline page on [start_ns, end_ns] (trace clock)."""
    st.session_state[WINDOW_KEY] = (int(start_ns), int(end_ns))
    st.switch_page(TIMELINE_PAGE)


def timeline_button(label: str, start_ns: int, end_ns: int, key: str) -> None:
    """A button that opens the Timeline page on a window."""
    if st.button(label, key=key, icon=":material/timeline:"):
        jump_to_timeline(start_ns, end_ns)


# ---- derived numbers the pages show (thin sums over profiler's tables) ------------------------------------
def inference_gpu_split(a) -> dict:
    """GPU time launched inside the measured inference stage, ns: total, kernel, tensor_core, memory ops
    (copies + memsets); from Analysis.range_stats over the inference ranges layers are taken from."""
    from profiler.analysis.layers import inference_instances

    nvtx = a.trace.nvtx
    inf = inference_instances(nvtx)
    pos = pd.Index(nvtx["range_id"]).get_indexer(inf["range_id"])
    st_ = a.range_stats.reindex(pos).fillna(0)
    gpu, kernel, tc = (int(st_[c].sum()) for c in ("gpu_ns", "kernel_ns", "tc_ns"))
    return {"gpu_ns": gpu, "kernel_ns": kernel, "tensor_core_ns": tc, "memory_ns": gpu - kernel,
            "instances": int(len(inf))}


def headline_findings(a, copy_found: list | None = None) -> list[tuple[str, str]]:
    """(sentence, page path) pairs for the Overview: one line per other page (Tensor Cores, Layers, Memory
    copies), from profiler's tables. The stage sentence is on the Overview itself."""
    from profiler.analysis.tensor_cores import layers_missing_tensor_cores

    out = []
    split = inference_gpu_split(a)
    if split["gpu_ns"]:
        tc = split["tensor_core_ns"] / split["gpu_ns"]
        line = f"Tensor-Core kernels take {tc:.0%} of the inference stage's GPU time"
        busy_layers = a.layers[a.layers["gpu_ns"] > 0] if len(a.layers) else a.layers
        miss = layers_missing_tensor_cores(busy_layers) if len(busy_layers) else busy_layers
        if len(miss):
            top = miss.iloc[0]
            line += (f"; {len(miss)} of {len(busy_layers)} layers with GPU work mostly miss them, the largest "
                     f"being layer #{int(top['layer'])} `{shorten(top['name'], 50)}` ({top['share']:.1%} of inference).")
        else:
            line += "."
        out.append((line, "pages/tensor_cores.py"))
    elif len(a.kernel_summary):
        out.append((f"Tensor-Core kernels take {a.tensor_core_share:.0%} of all kernel time.", "pages/tensor_cores.py"))
    if len(a.layers) and a.layers["gpu_ns"].sum() > 0:
        top = a.layers.sort_values("gpu_ns", ascending=False).iloc[0]
        out.append((f"The heaviest layer is #{int(top['layer'])} `{shorten(top['name'], 60)}`: {top['share']:.1%} of "
                    f"inference GPU time, mostly in `{short_kernel_name(top['dominant_kernel'], 50)}`.",
                    "pages/layers.py"))
    if copy_found:
        f = copy_found[0]
        out.append((f"Memory copies: {len(copy_found)} findings; the costliest — {f['title'].lower()} "
                    f"({f['count']} × {f.get('operation', '')}) — costs about {fmt_ms(f['wasted_ns'])}.",
                    "pages/memory_copies.py"))
    elif len(a.memory_summary):
        m = a.memory_summary
        out.append((f"Memory operations: {int(m['count'].sum())} copies and memsets, {fmt_bytes(m['total_bytes'].sum())}, "
                    f"{fmt_ms(m['total_ns'].sum())} of GPU time.", "pages/memory_copies.py"))
    return out


# ---- formatting ------------------------------------------------------------------------------------------------
def fmt_ns(ns: float | None) -> str:
    """A duration in ns, in the unit that reads best (ns, µs, ms, s)."""
    if ns is None or pd.isna(ns):
        return "—"
    ns = float(ns)
    if abs(ns) >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if abs(ns) >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if abs(ns) >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def fmt_ms(ns: float | None) -> str:
    """A duration given in ns, in ms with 2 decimals (or via fmt_ns when tiny)."""
    if ns is None or pd.isna(ns):
        return "—"
    return f"{float(ns) / 1e6:.2f} ms" if abs(float(ns)) >= 1e4 else fmt_ns(ns)


def fmt_pct(share: float | None, digits: int = 1) -> str:
    """A share 0..1 as a percentage."""
    if share is None or pd.isna(share):
        return "—"
    return f"{100 * float(share):.{digits}f}%"


def fmt_bytes(n: float | None) -> str:
    """Bytes in B / KB / MB / GB (powers of 1000, as nsys prints them)."""
    if n is None or pd.isna(n):
        return "—"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def shorten(text: str, width: int = 60) -> str:
    """Cut text to `width` characters, keeping the start and the end ('aten::linear, si…[1500]]')."""
    text = str(text)
    if len(text) <= width:
        return text
    head = (width - 1) * 2 // 3
    return text[:head] + "…" + text[-(width - 1 - head):]


_CASTS = re.compile(r"\((?:unsigned |signed )?(?:int|bool|long|char|short)\)")


def short_kernel_name(name: str, width: int = 60) -> str:
    """A readable kernel name: no return type, no parameter list, no `(int)` casts, templates nested deeper
    than one level folded to `<…>`, then shortened to `width`.

    'void cutlass::Kernel2<cutlass_80_tensorop_f16_s16816gemm_f16_128x128_64x3_tn_align2>(T1::Params)'
    -> 'cutlass::Kernel2<cutlass_80_tensorop_f16_s16816gemm_f16_128x128_64x3_tn_align2>'
    """
    s = str(name).strip()
    if s.startswith("void "):
        s = s[5:]
    s = _CASTS.sub("", s)
    depth, out, i = 0, [], 0
    cut = len(s)
    for i, ch in enumerate(s):  # drop the trailing parameter list "(...)" at template depth 0
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0 and i > 0:
            cut = i
            break
    s = s[:cut]
    depth = 0
    for ch in s:  # fold templates below the first level
        if ch == "<":
            depth += 1
            if depth == 2:
                out.append("<…")
                continue
        elif ch == ">":
            depth -= 1
            if depth == 1:
                out.append(">")
                continue
        if depth >= 2:
            continue
        out.append(ch)
    s = re.sub(r"\s+", " ", "".join(out)).replace("at::native::", "")
    return shorten(s, width)


def run_facts(run: Run, a) -> dict:
    """Device, precision, batch, backend, model for the Overview header (metadata first, then the trace)."""
    meta = run.metadata or {}
    gpu = meta.get("gpu")
    device = (gpu.get("name") if isinstance(gpu, dict) else gpu) or a.trace.device.get("name", "unknown GPU")
    return {"device": device, "precision": meta.get("precision") or "—", "batch": meta.get("batch") or "—",
            "backend": meta.get("backend") or "—", "model": meta.get("model") or run.name}


def latency_rows(run: Run, a) -> pd.DataFrame:
    """Per stage: unprofiled latency from metadata.json (median, p90, mean ms) when the harness measured it,
    and the profiled median wall time from the trace's NVTX ranges."""
    rows = []
    lat = (run.metadata or {}).get("latency_ms") or {}
    prof = (run.metadata or {}).get("profiled_latency_ms") or {}
    per = a.per_iteration
    for stage in ["preprocess", "inference", "postprocess", "total"]:
        measured = lat.get(stage) or (lat.get("iteration") if stage == "total" else None) or {}
        traced = None
        if len(per) and stage in per.columns:
            traced = float(per[stage].median()) / 1e6
        p = prof.get(stage) if isinstance(prof, dict) else None
        if isinstance(p, dict):
            p = p.get("median")
        if not measured and traced is None and p is None:
            continue
        rows.append({"stage": stage, "median ms": measured.get("median"), "p90 ms": measured.get("p90"),
                     "mean ms": measured.get("mean"), "profiled median ms": p if p is not None else traced})
    return pd.DataFrame(rows)
