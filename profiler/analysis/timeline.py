"""Timeline lanes and segments for drawing a trace: one lane per CUDA stream, one per NVTX nesting level.

`timeline_source(trace)` gathers what a timeline needs once per trace (sorted arrays; cache it). Then
`timeline_view(source, window, budget)` returns the lanes and the segments that overlap a time window,
never more segments than `budget` (default SHAPE_BUDGET = 50,000): when the window holds more, each crowded
lane gets a share of the budget and its events are merged into at most that many busy blocks by closing its
smallest gaps first (the gaps too short to see at that zoom), and the view says so (`merged`, `note`).

All times are ns on the trace's clock; `t0` is the trace's first event, for display as time since start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from profiler.analysis.kernels import tensor_core_flags
from profiler.analysis.stages import DEFAULT_ITERATION, DEFAULT_STAGES, iteration_ranges

SHAPE_BUDGET = 50_000

# Legend categories, in drawing order. GPU operations first, then NVTX ranges.
GPU_CATEGORIES = ("Kernel · Tensor Cores", "Kernel", "Memcpy HtoD", "Memcpy DtoH", "Memcpy other", "Memset")
NVTX_CATEGORIES = ("Iteration", "Preprocess", "Inference", "Postprocess", "NVTX range")
CATEGORIES = GPU_CATEGORIES + NVTX_CATEGORIES

LANE_COLUMNS = ["lane", "label", "group", "device_id", "stream_id", "global_tid", "depth", "items"]
SEGMENT_COLUMNS = ["lane", "start", "end", "duration_ns", "busy_ns", "count", "name", "category", "bytes",
                   "merged"]


@dataclass
class TimelineSource:
    """A trace's GPU operations and NVTX ranges as flat arrays sorted by (lane, start).

    lanes: LANE_COLUMNS (lane = row number; group 'nvtx' lanes first, then 'gpu'); items = events in lane.
    start/end: ns; name_code indexes `names`; category indexes CATEGORIES; bytes: NaN for kernels/ranges.
    lane_offsets[k]:lane_offsets[k+1] is lane k's slice; lane_max_duration[k] bounds a lane's longest event
    (to find events that start before a window but reach into it).
    """

    lanes: pd.DataFrame
    lane: np.ndarray
    start: np.ndarray
    end: np.ndarray
    name_code: np.ndarray
    names: np.ndarray
    category: np.ndarray
    bytes: np.ndarray
    lane_offsets: np.ndarray
    lane_max_duration: np.ndarray
    t0: int
    t1: int
    iterations: pd.DataFrame = field(default_factory=pd.DataFrame)  # text, start, end (ns)

    @property
    def items(self) -> int:
        return int(len(self.start))


@dataclass
class TimelineView:
    """What to draw for one window: lanes, segments (SEGMENT_COLUMNS), and whether merging happened.

    segments: start/end ns; duration_ns = end - start; busy_ns = summed durations of the merged events
    (= duration_ns for single events); count = events in the segment; name = the event's name, for merged
    blocks the longest member's; category = for merged blocks the category with the most busy time; bytes =
    copied/set bytes (summed), NaN for kernels and ranges.
    """

    lanes: pd.DataFrame
    segments: pd.DataFrame
    window: tuple[int, int]
    t0: int
    budget: int
    items_in_window: int
    merged: bool
    merge_gap_ns: float  # largest gap closed when merging (0 when nothing was merged)
    note: str


def _gpu_category(kind: np.ndarray, names: pd.Series, tensor_core: np.ndarray) -> np.ndarray:
    cat = np.full(len(kind), CATEGORIES.index("Kernel"), dtype=np.int8)
    cat[(kind == "kernel") & tensor_core] = CATEGORIES.index("Kernel · Tensor Cores")
    text = names.astype(str)
    is_copy = kind == "memcpy"
    cat[is_copy] = CATEGORIES.index("Memcpy other")
    cat[is_copy & text.str.contains("Host-to-Device", regex=False).to_numpy()] = CATEGORIES.index("Memcpy HtoD")
    cat[is_copy & text.str.contains("Device-to-Host", regex=False).to_numpy()] = CATEGORIES.index("Memcpy DtoH")
    cat[kind == "memset"] = CATEGORIES.index("Memset")
    return cat


def _nvtx_category(text: pd.Series, stages=DEFAULT_STAGES, iteration: str = DEFAULT_ITERATION) -> np.ndarray:
    cat = np.full(len(text), CATEGORIES.index("NVTX range"), dtype=np.int8)
    codes, uniques = pd.factorize(text.astype(str))
    per_unique = np.full(len(uniques), CATEGORIES.index("NVTX range"), dtype=np.int8)
    pattern = re.compile(iteration)
    for i, u in enumerate(uniques):
        if pattern.fullmatch(u):
            per_unique[i] = CATEGORIES.index("Iteration")
        elif u in stages and u.capitalize() in CATEGORIES:
            per_unique[i] = CATEGORIES.index(u.capitalize())
    if len(codes):
        cat = per_unique[codes]
    return cat


def _lane_label(group: str, device, stream, tid, depth, cats: np.ndarray, single_thread: bool,
                under_inference: float = 0.0) -> str:
    if group == "gpu":
        return f"GPU {device} · stream {stream}"
    counts = np.bincount(cats, minlength=len(CATEGORIES)) if len(cats) else np.zeros(len(CATEGORIES))
    top = CATEGORIES[int(np.argmax(counts))]
    what = {"Iteration": "iterations", "Preprocess": "stages", "Inference": "stages", "Postprocess": "stages"}.get(
        top, "layers" if under_inference > 0.5 else f"NVTX level {depth}")
    thread = "" if single_thread else f"thread {int(tid) & 0xFFFFFF} · "
    return f"{thread}{what}"


def timeline_source(gpu_ops: pd.DataFrame, nvtx: pd.DataFrame, max_nvtx_depth: int | None = None,
                    tensor_core: np.ndarray | None = None) -> TimelineSource:
    """Arrays for timeline_view from Trace.gpu_ops and Trace.nvtx (see their column contracts).

    `tensor_core` flags per gpu_ops row mark Tensor-Core kernels; computed from kernel names when not given.
    `max_nvtx_depth` keeps NVTX levels 0..max_nvtx_depth (None: all).
    """
    ops = gpu_ops
    kind = ops["kind"].astype(str).to_numpy()
    if tensor_core is None:
        tensor_core = np.zeros(len(ops), dtype=bool)
        is_k = kind == "kernel"
        if is_k.any():
            tensor_core[is_k] = tensor_core_flags(ops.loc[is_k, "name"].astype(str)).to_numpy()
    g_cat = _gpu_category(kind, ops["name"], np.asarray(tensor_core, dtype=bool))
    dev = ops["device_id"].fillna(0).to_numpy().astype(np.int64)
    stream = ops["stream_id"].fillna(0).to_numpy().astype(np.int64)

    nv = nvtx if max_nvtx_depth is None else nvtx[nvtx["depth"] <= max_nvtx_depth]
    n_cat = _nvtx_category(nv["text"])
    inference_ids = nvtx.loc[nvtx["text"].astype(str) == "inference", "range_id"] if "range_id" in nvtx else []
    under_inference = nv["parent"].isin(set(inference_ids)).to_numpy() if "parent" in nv else np.zeros(len(nv), bool)
    tid = nv["global_tid"].to_numpy().astype(np.int64)
    depth = nv["depth"].to_numpy().astype(np.int64)

    # lanes: NVTX (thread, depth) first, then GPU (device, stream)
    nv_keys = pd.DataFrame({"global_tid": tid, "depth": depth}).drop_duplicates().sort_values(["global_tid", "depth"])
    gpu_keys = pd.DataFrame({"device_id": dev, "stream_id": stream}).drop_duplicates().sort_values(
        ["device_id", "stream_id"])
    nv_lane = pd.MultiIndex.from_frame(nv_keys).get_indexer(pd.MultiIndex.from_arrays([tid, depth])) \
        if len(nv_keys) else np.zeros(0, dtype=np.int64)
    gpu_lane = len(nv_keys) + (pd.MultiIndex.from_frame(gpu_keys).get_indexer(pd.MultiIndex.from_arrays([dev, stream]))
                               if len(gpu_keys) else np.zeros(0, dtype=np.int64))

    names_all = pd.concat([nv["text"].astype(str), ops["name"].astype(str)], ignore_index=True)
    name_code, names = pd.factorize(names_all)
    inference_share = (pd.Series(under_inference.astype(float)).groupby(np.asarray(nv_lane)).mean()
                       if len(nv) else pd.Series(dtype=float))
    lane = np.concatenate([nv_lane, gpu_lane]).astype(np.int32)
    start = np.concatenate([nv["start"].to_numpy(), ops["start"].to_numpy()]).astype(np.int64)
    end = np.concatenate([nv["end"].to_numpy(), ops["end"].to_numpy()]).astype(np.int64)
    category = np.concatenate([n_cat, g_cat]).astype(np.int8)
    nbytes = np.concatenate([np.full(len(nv), np.nan),
                             pd.to_numeric(ops["bytes"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)])
    order = np.lexsort((start, lane))
    lane, start, end = lane[order], start[order], end[order]
    name_code, category, nbytes = name_code[order].astype(np.int32), category[order], nbytes[order]

    n_lanes = len(nv_keys) + len(gpu_keys)
    offsets = np.searchsorted(lane, np.arange(n_lanes + 1), side="left")
    dur = end - start
    max_dur = np.array([dur[offsets[k]:offsets[k + 1]].max() if offsets[k + 1] > offsets[k] else 0
                        for k in range(n_lanes)], dtype=np.int64)
    single_thread = nv_keys["global_tid"].nunique() <= 1
    rows = []
    for k, r in enumerate(nv_keys.itertuples(index=False)):
        cats = category[offsets[k]:offsets[k + 1]]
        label = _lane_label("nvtx", None, None, r.global_tid, r.depth, cats, single_thread,
                            float(inference_share.get(k, 0.0)))
        rows.append({"lane": k, "label": label,
                     "group": "nvtx", "device_id": pd.NA, "stream_id": pd.NA, "global_tid": int(r.global_tid),
                     "depth": int(r.depth), "items": int(offsets[k + 1] - offsets[k])})
    for j, r in enumerate(gpu_keys.itertuples(index=False)):
        k = len(nv_keys) + j
        rows.append({"lane": k, "label": _lane_label("gpu", r.device_id, r.stream_id, None, None, None, True),
                     "group": "gpu", "device_id": int(r.device_id), "stream_id": int(r.stream_id),
                     "global_tid": pd.NA, "depth": pd.NA, "items": int(offsets[k + 1] - offsets[k])})
    lanes = pd.DataFrame(rows, columns=LANE_COLUMNS)
    # two NVTX lanes of one thread may get the same label (e.g. two 'NVTX level' rows): keep labels unique
    dup = lanes["label"].duplicated(keep=False) & (lanes["group"] == "nvtx")
    lanes.loc[dup, "label"] = lanes.loc[dup, "label"] + " (level " + lanes.loc[dup, "depth"].astype(str) + ")"
    t0 = int(start.min()) if len(start) else 0
    t1 = int(end.max()) if len(end) else 0
    its = iteration_ranges(nvtx)[["text", "start", "end"]].reset_index(drop=True) if len(nvtx) else \
        pd.DataFrame(columns=["text", "start", "end"])
    return TimelineSource(lanes, lane, start, end, name_code, np.asarray(names, dtype=object), category, nbytes,
                          offsets, max_dur, t0, t1, its)


def _in_window(src: TimelineSource, w0: int, w1: int) -> np.ndarray:
    """Indices (sorted by lane, start) of events overlapping [w0, w1]."""
    parts = []
    for k in range(len(src.lanes)):
        lo_off, hi_off = src.lane_offsets[k], src.lane_offsets[k + 1]
        if hi_off == lo_off:
            continue
        s = src.start[lo_off:hi_off]
        lo = np.searchsorted(s, w0 - src.lane_max_duration[k], side="left")
        hi = np.searchsorted(s, w1, side="right")
        idx = np.arange(lo_off + lo, lo_off + hi)
        parts.append(idx[src.end[idx] >= w0])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def lane_shares(counts: np.ndarray, budget: int) -> np.ndarray:
    """Per lane, how many segments it may draw so that all lanes together stay within `budget`; lanes that
    fit keep every event (share = their count). Water-filling: lanes with fewer events than an even share
    of what is left keep all of them; the crowded lanes split the rest evenly."""
    shares = counts.astype(float).copy()
    if counts.sum() <= budget:
        return shares
    left, crowded = float(budget), np.flatnonzero(counts > 0)
    while len(crowded):
        share = left / len(crowded)
        small = crowded[counts[crowded] <= share]
        if not len(small):
            break
        left -= counts[small].sum()
        crowded = np.setdiff1d(crowded, small)
    if len(crowded):
        shares[crowded] = max(1.0, np.floor(left / len(crowded)))
    return shares


def timeline_view(src: TimelineSource, window: tuple[int, int] | None = None, budget: int = SHAPE_BUDGET
                  ) -> TimelineView:
    """Lanes and at most `budget` segments overlapping `window` (ns; None: the whole trace)."""
    w0, w1 = (src.t0, src.t1) if window is None else (int(window[0]), int(window[1]))
    if w1 <= w0:
        w1 = w0 + 1
    idx = _in_window(src, w0, w1)
    lane, start, end = src.lane[idx], src.start[idx], src.end[idx]
    counts = np.bincount(lane, minlength=len(src.lanes)) if len(lane) else np.zeros(len(src.lanes), dtype=np.int64)
    shares = lane_shares(counts, budget)
    merging = bool((shares < counts).any())
    dur = end - start
    if not merging:
        seg = pd.DataFrame({"lane": lane, "start": start, "end": end, "duration_ns": dur, "busy_ns": dur,
                            "count": np.ones(len(idx), dtype=np.int64), "name": src.names[src.name_code[idx]],
                            "category": np.asarray(CATEGORIES, dtype=object)[src.category[idx]],
                            "bytes": src.bytes[idx], "merged": np.zeros(len(idx), dtype=bool)})
        gap = 0.0
    else:
        seg, gap = _merge(src, idx, counts, shares)
    lanes = src.lanes.assign(in_window=counts, drawn=np.bincount(seg["lane"].to_numpy(), minlength=len(src.lanes))
                             if len(seg) else 0)
    note = ""
    if merging:
        note = (f"This window holds {len(idx):,} GPU operations and NVTX ranges, more than the {budget:,} shapes "
                f"a browser draws smoothly: on crowded lanes, neighbours closer than {_fmt_ns(gap)} are merged "
                f"into busy blocks ({len(seg):,} shapes drawn). Zoom in or pick an iteration to see single events.")
    return TimelineView(lanes, seg[SEGMENT_COLUMNS], (w0, w1), src.t0, budget, int(len(idx)), merging, gap, note)


def _merge(src: TimelineSource, idx: np.ndarray, counts: np.ndarray, shares: np.ndarray
           ) -> tuple[pd.DataFrame, float]:
    """Merge events per lane into at most `shares[lane]` blocks: a new block starts where the gap between
    an event and everything before it on its lane is among the lane's (share - 1) largest gaps.
    Returns the segments and the largest gap that was closed (ns)."""
    lane, start, end = src.lane[idx], src.start[idx], src.end[idx]
    dur = end - start
    base = int(start.min())
    rel_end = end - base
    span = int(rel_end.max()) + 1
    shift = lane.astype(np.int64) * span
    run_end = np.maximum.accumulate(shift + rel_end) - shift + base  # latest end so far on the lane
    new_lane = np.r_[True, lane[1:] != lane[:-1]]
    gap = start - np.r_[start[0], run_end[:-1]]
    gap = np.where(new_lane, np.iinfo(np.int64).max, gap)
    new_block = new_lane.copy()
    closed = 0.0
    for k in np.flatnonzero(counts):
        lo, hi = np.searchsorted(lane, [k, k + 1])
        if shares[k] >= counts[k]:
            new_block[lo:hi] = True
            continue
        g = gap[lo + 1:hi]
        keep = int(shares[k]) - 1  # the largest gaps stay open (ties broken by position)
        is_open = np.zeros(len(g), dtype=bool)
        if keep > 0:
            is_open[np.argpartition(g, len(g) - keep)[len(g) - keep:]] = True
        new_block[lo + 1:hi] = is_open
        closed = max(closed, float(g[~is_open].max(initial=0)))
    first = np.flatnonzero(new_block)
    block = np.cumsum(new_block) - 1
    count = np.diff(np.r_[first, len(idx)])
    b_start = start[first]
    b_end = np.maximum.reduceat(end, first)
    busy = np.add.reduceat(dur, first)
    raw_bytes = src.bytes[idx]
    has_bytes = np.add.reduceat((~np.isnan(raw_bytes)).astype(np.int64), first) > 0
    b_bytes = np.where(has_bytes, np.add.reduceat(np.nan_to_num(raw_bytes), first), np.nan)
    longest = np.maximum.reduceat(dur, first)
    cand = np.flatnonzero(dur == longest[block])
    pick = cand[np.r_[True, block[cand][1:] != block[cand][:-1]]]  # first longest member of each block
    # a block's category: the one with the most busy time in it (not the longest single event's)
    n_cat = len(CATEGORIES)
    per_cat = np.bincount(block * n_cat + src.category[idx].astype(np.int64), weights=dur.astype(float),
                          minlength=len(first) * n_cat).reshape(len(first), n_cat)
    seg = pd.DataFrame({
        "lane": lane[first], "start": b_start, "end": b_end, "duration_ns": b_end - b_start, "busy_ns": busy,
        "count": count, "name": src.names[src.name_code[idx[pick]]],
        "category": np.asarray(CATEGORIES, dtype=object)[per_cat.argmax(axis=1)], "bytes": b_bytes,
        "merged": count > 1,
    })
    return seg, closed


def iteration_window(src: TimelineSource, text: str) -> tuple[int, int]:
    """The [start, end] ns of the iteration range with this text (e.g. 'iteration_3')."""
    row = src.iterations[src.iterations["text"] == text].iloc[0]
    return int(row["start"]), int(row["end"])


def timeline(trace, window: tuple[int, int] | None = None, budget: int = SHAPE_BUDGET,
             max_nvtx_depth: int | None = None) -> TimelineView:
    """timeline_view of a Trace (or an Analysis, whose Tensor-Core flags are reused) in one call."""
    if hasattr(trace, "projected"):  # an Analysis
        trace = trace.trace
    return timeline_view(timeline_source(trace.gpu_ops, trace.nvtx, max_nvtx_depth), window, budget)


def _fmt_ns(ns: float) -> str:
    if ns >= 1e9:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def binned_series(timestamps: np.ndarray, values: np.ndarray, t0: int, max_points: int = 4000,
                  window: tuple[int, int] | None = None) -> pd.DataFrame:
    """A sampled metric (e.g. Tensor Active %) cut down to at most `max_points` time bins for drawing.

    Returns time_ms (bin start, ms since t0), mean, min, max of the samples in each non-empty bin; samples
    are taken as they are when there are no more than `max_points` of them (then min = max = mean).
    """
    t = np.asarray(timestamps, dtype=np.int64)
    v = np.asarray(values, dtype=float)
    if window is not None:
        keep = (t >= window[0]) & (t <= window[1])
        t, v = t[keep], v[keep]
    if len(t) <= max_points:
        order = np.argsort(t, kind="stable")
        return pd.DataFrame({"time_ms": (t[order] - t0) / 1e6, "mean": v[order], "min": v[order], "max": v[order]})
    lo, hi = int(t.min()), int(t.max()) + 1
    width = max(1, -(-(hi - lo) // max_points))
    b = (t - lo) // width
    df = pd.DataFrame({"b": b, "v": v}).groupby("b")["v"].agg(["mean", "min", "max"]).reset_index()
    df.insert(0, "time_ms", (lo + df.pop("b").to_numpy() * width - t0) / 1e6)
    return df
