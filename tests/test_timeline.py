"""Timeline lanes and segments: one lane per stream and NVTX level, windows, and the shape budget."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profiler.analysis.summary import analyze
from profiler.analysis.timeline import (SEGMENT_COLUMNS, iteration_window, lane_shares, timeline, timeline_source,
                                        timeline_view)
from profiler.trace import open_trace


@pytest.fixture(scope="module")
def trace(synthetic_trace):
    with open_trace(synthetic_trace) as t:
        yield t


def test_lanes_per_stream_and_nvtx_level(trace):
    src = timeline_source(trace.gpu_ops, trace.nvtx)
    lanes = src.lanes
    assert list(lanes["label"]) == ["iterations", "stages", "layers", "GPU 0 · stream 7",
                                    "GPU 0 · stream 13", "GPU 0 · stream 14"]
    assert src.items == len(trace.gpu_ops) + len(trace.nvtx)
    view = timeline_view(src)
    assert not view.merged and view.note == "" and len(view.segments) == src.items
    assert list(view.segments.columns) == SEGMENT_COLUMNS
    seg = view.segments
    gemm = seg[seg["name"].str.contains("xmma")]
    assert (gemm["category"] == "Kernel · Tensor Cores").all() and len(gemm) == 9
    copies = seg[seg["category"] == "Memcpy HtoD"]
    assert len(copies) == 3 and (copies["bytes"] == 1 << 20).all()
    assert set(seg.loc[seg["lane"] == 1, "category"]) == {"Preprocess", "Inference", "Postprocess"}


def test_iteration_window_keeps_overlapping_events_only(trace):
    src = timeline_source(trace.gpu_ops, trace.nvtx)
    w0, w1 = iteration_window(src, "iteration_1")
    view = timeline_view(src, (w0, w1))
    seg = view.segments
    assert view.window == (w0, w1)
    assert (seg["end"] >= w0).all() and (seg["start"] <= w1).all()
    assert list(seg.loc[seg["lane"] == 0, "name"]) == ["iteration_1"]
    assert (seg["name"] == "inference").sum() == 1
    # a window inside one long kernel still shows that kernel (it started before the window)
    gemm = trace.kernels.sort_values("start").iloc[0]
    inside = timeline_view(src, (int(gemm["start"]) + 10, int(gemm["start"]) + 20)).segments
    assert (inside["start"] == gemm["start"]).any()


def test_budget_merges_and_says_so(trace):
    src = timeline_source(trace.gpu_ops, trace.nvtx)
    view = timeline_view(src, budget=20)
    seg = view.segments
    assert view.merged and "merged" in view.note and view.items_in_window == src.items
    assert len(seg) <= 20
    assert seg["count"].sum() == src.items  # every event is in exactly one segment
    assert seg["busy_ns"].sum() == int((src.end - src.start).sum())
    assert (seg["duration_ns"] >= 0).all() and seg["merged"].any()


def test_one_shape_per_lane_at_least():
    counts = np.array([10, 10_000, 0, 3])
    shares = lane_shares(counts, 100)
    assert shares[0] == 10 and shares[3] == 3 and shares[2] == 0 and shares[1] == 87
    assert (lane_shares(counts, 10**6) == counts).all()


def _random_frames(n_kernels: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = np.cumsum(rng.integers(500, 5_000, n_kernels))
    dur = rng.integers(1_000, 20_000, n_kernels)
    stream = rng.choice([7, 13, 21], n_kernels)
    # kernels on one stream do not overlap: lay each stream's kernels end to end from their start times
    ops = pd.DataFrame({"start": start, "end": start + dur, "stream_id": stream, "device_id": 0,
                        "kind": "kernel", "name": rng.choice(["gemm_xmma", "relu", "softmax"], n_kernels),
                        "bytes": pd.NA})
    ops = ops.sort_values(["stream_id", "start"]).reset_index(drop=True)
    for s, grp in ops.groupby("stream_id"):
        ends = np.maximum.accumulate(grp["end"].to_numpy())
        starts = np.maximum(grp["start"].to_numpy(), np.r_[0, ends[:-1]])
        ops.loc[grp.index, "start"] = starts
        ops.loc[grp.index, "end"] = starts + (grp["end"] - grp["start"]).to_numpy()
    its = np.arange(0, start[-1], 1_000_000)
    nvtx = pd.DataFrame({"start": its, "end": its + 900_000, "text": [f"iteration_{i}" for i in range(len(its))],
                         "global_tid": 1, "depth": 0, "range_id": np.arange(len(its)), "parent": -1})
    return ops, nvtx


@pytest.mark.parametrize("budget", [50_000, 5_000, 100])
def test_budget_holds_on_large_inputs(budget):
    ops, nvtx = _random_frames(200_000)
    src = timeline_source(ops, nvtx)
    view = timeline_view(src, budget=budget)
    assert view.merged and len(view.segments) <= budget
    assert view.segments["count"].sum() == src.items
    # blocks on one lane never overlap and cover every event of the lane
    for lane, seg in view.segments.groupby("lane"):
        seg = seg.sort_values("start")
        assert (seg["start"].to_numpy()[1:] >= seg["end"].to_numpy()[:-1]).all()
    w = (int(ops["start"].iloc[1000]), int(ops["start"].iloc[1000]) + 200_000)
    zoomed = timeline_view(src, w, budget=budget)
    assert zoomed.items_in_window < 1000 and not zoomed.merged


def test_timeline_accepts_an_analysis(trace):
    a = analyze(trace)
    view = timeline(a, budget=10)
    assert len(view.segments) <= 10 and view.t0 == min(trace.gpu_ops["start"].min(), trace.nvtx["start"].min())


def test_merged_block_takes_the_category_with_most_busy_time():
    """One 100 ns copy among ten 20 ns kernels, merged into one block: a kernel block named after the copy."""
    starts = [0] + [200 + 30 * i for i in range(10)]
    ends = [100] + [220 + 30 * i for i in range(10)]
    ops = pd.DataFrame({"start": starts, "end": ends, "stream_id": 7, "device_id": 0,
                        "kind": ["memcpy"] + ["kernel"] * 10,
                        "name": ["[CUDA memcpy Host-to-Device]"] + ["relu"] * 10, "bytes": [4096] + [pd.NA] * 10})
    nvtx = pd.DataFrame(columns=["start", "end", "text", "global_tid", "depth", "range_id", "parent"])
    view = timeline_view(timeline_source(ops, nvtx), budget=1)
    (block,) = view.segments.itertuples()
    assert block.count == 11 and block.category == "Kernel" and block.name == "[CUDA memcpy Host-to-Device]"
    assert block.busy_ns == 300 and block.bytes == 4096
