"""NVTX ranges: summary (as nsys's nvtx_sum) and projection of GPU work onto the ranges that launched it.

Projection rule: a GPU operation (kernel, copy, memset) belongs to the innermost NVTX range, on the
launching thread, that is open when the CUDA API call that launched it starts (kernel and API call are
joined by correlationId within a process), and so to every range enclosing that one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from profiler.trace.tables import global_pid


def range_label(domain: pd.Series, text: pd.Series) -> pd.Series:
    """Range names as nsys prints them: 'domain:text' (':text' in the default domain)."""
    return domain.astype(str) + ":" + text.astype(str)


def nvtx_summary(nvtx: pd.DataFrame) -> pd.DataFrame:
    """One row per (domain, text, style): instances, total/avg/med/min/max/std ns, time_pct; by total desc."""
    cols = ["range", "style", "instances", "total_ns", "avg_ns", "med_ns", "min_ns", "max_ns", "std_ns",
            "time_pct"]
    if nvtx.empty:
        return pd.DataFrame(columns=cols)
    g = nvtx.groupby(["domain", "text", "style"], sort=False, observed=True)["duration_ns"]
    out = g.agg(instances="size", total_ns="sum", avg_ns="mean", med_ns="median", min_ns="min", max_ns="max",
                std_ns="std").reset_index()
    out["range"] = range_label(out["domain"], out["text"])
    out["style"] = out["style"].astype(str)
    # the same label from two (domain, text) spellings cannot occur: domain and text determine the label
    out["std_ns"] = out["std_ns"].fillna(0.0)
    out["time_pct"] = 100.0 * out["total_ns"] / out["total_ns"].sum()
    return out.sort_values(["total_ns", "range"], ascending=[False, True], kind="stable").reset_index(drop=True)[cols]


def launching_calls(gpu_ops: pd.DataFrame, api: pd.DataFrame) -> pd.DataFrame:
    """gpu_ops with the launching API call: adds global_tid, api_start, api_end (ns) and api_name."""
    calls = api[["correlation_id", "global_tid", "start", "end", "name"]].rename(
        columns={"start": "api_start", "end": "api_end", "name": "api_name"})
    calls = calls.assign(global_pid=global_pid(calls["global_tid"]))
    return gpu_ops.merge(calls, on=["global_pid", "correlation_id"], how="left", sort=False)


def innermost_ranges(nvtx: pd.DataFrame, tid: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For each (thread, time), the row position in `nvtx` of the innermost range open then, or -1.

    `nvtx` must be sorted by (global_tid, start asc, end desc) with `depth`/`parent`, as Trace.nvtx is.
    """
    out = np.full(len(t), -1, dtype=np.int64)
    if nvtx.empty or len(t) == 0:
        return out
    ids = nvtx["range_id"].to_numpy()
    pos_of_id = pd.Series(np.arange(len(nvtx)), index=ids)
    parent_pos = pos_of_id.reindex(nvtx["parent"].to_numpy()).fillna(-1).to_numpy().astype(np.int64)
    starts = nvtx["start"].to_numpy()
    ends = nvtx["end"].to_numpy()
    tids = nvtx["global_tid"].to_numpy()
    bounds = np.flatnonzero(np.r_[True, tids[1:] != tids[:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = np.flatnonzero(tid == tids[lo])
        if not len(sel):
            continue
        cand = np.searchsorted(starts[lo:hi], t[sel], side="right") - 1 + lo
        cand[cand < lo] = -1
        # climb to the nearest ancestor still open at t (at most max-depth steps)
        for _ in range(int(nvtx["depth"].max()) + 2):
            closed = (cand >= 0) & (ends[np.maximum(cand, 0)] < t[sel])
            if not closed.any():
                break
            cand[closed] = parent_pos[cand[closed]]
        out[sel] = cand
    return out


def project_gpu_ops(nvtx: pd.DataFrame, gpu_ops: pd.DataFrame, api: pd.DataFrame) -> pd.DataFrame:
    """gpu_ops with `range_pos`: row position in `nvtx` of the innermost range that launched each op (-1: none)."""
    ops = launching_calls(gpu_ops, api)
    has_call = ops["api_start"].notna().to_numpy()
    pos = np.full(len(ops), -1, dtype=np.int64)
    if has_call.any():
        pos[has_call] = innermost_ranges(nvtx, ops.loc[has_call, "global_tid"].to_numpy().astype(np.int64),
                                         ops.loc[has_call, "api_start"].to_numpy().astype(np.int64))
    return ops.assign(range_pos=pos)


def range_op_pairs(nvtx: pd.DataFrame, projected: pd.DataFrame) -> pd.DataFrame:
    """(range_pos, op row) pairs: each projected op paired with its innermost range and every ancestor."""
    ids = nvtx["range_id"].to_numpy()
    pos_of_id = pd.Series(np.arange(len(nvtx)), index=ids)
    parent_pos = pos_of_id.reindex(nvtx["parent"].to_numpy()).fillna(-1).to_numpy().astype(np.int64)
    cur = projected["range_pos"].to_numpy()
    op_idx = np.arange(len(projected))
    keep = cur >= 0
    cur, op_idx = cur[keep], op_idx[keep]
    ranges, ops = [], []
    while len(cur):
        ranges.append(cur)
        ops.append(op_idx)
        cur = parent_pos[cur]
        keep = cur >= 0
        cur, op_idx = cur[keep], op_idx[keep]
    if not ranges:
        return pd.DataFrame({"range_pos": np.array([], dtype=np.int64), "op": np.array([], dtype=np.int64)})
    return pd.DataFrame({"range_pos": np.concatenate(ranges), "op": np.concatenate(ops)})


def busy_ns(group_keys: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> pd.Series:
    """Union length (ns) of [start, end) intervals per group key: overlapping streams are counted once."""
    if len(starts) == 0:
        return pd.Series(dtype="int64")
    order = np.lexsort((starts, group_keys))
    k, s, e = group_keys[order], starts[order], ends[order]
    run_end = pd.Series(e).groupby(k).cummax().to_numpy()
    prev_end = np.r_[np.iinfo(np.int64).min, run_end[:-1]]
    new_group = np.r_[True, k[1:] != k[:-1]]
    prev_end[new_group] = np.iinfo(np.int64).min
    covered = np.clip(e - np.maximum(s, prev_end), 0, None)
    return pd.Series(covered).groupby(k).sum()


def range_gpu_stats(nvtx: pd.DataFrame, projected: pd.DataFrame, tensor_core: pd.Series | None = None,
                    pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per NVTX range (indexed by row position in `nvtx`): GPU work it launched, itself or in sub-ranges.

    Columns: gpu_ops, kernels, gpu_ns (sum of op durations), kernel_ns, tc_ns (Tensor-Core kernel ns, when
    `tensor_core` flags per projected op are given), busy_ns (union of op intervals), gpu_start, gpu_end
    (first op start, last op end: nsys's "projected" range is gpu_end - gpu_start). `pairs` is
    range_op_pairs(nvtx, projected), computed here when not given.
    """
    if pairs is None:
        pairs = range_op_pairs(nvtx, projected)
    op = pairs["op"].to_numpy()
    r = pairs["range_pos"].to_numpy().astype(np.int64)
    n = len(nvtx)
    start = projected["start"].to_numpy().astype(np.int64)[op]
    end = projected["end"].to_numpy().astype(np.int64)[op]
    is_kernel = (projected["kind"] == "kernel").to_numpy(dtype=bool)[op]
    dur = end - start
    tc = tensor_core.to_numpy(dtype=bool)[op] & is_kernel if tensor_core is not None else np.zeros(len(op), bool)
    gpu_start = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(gpu_start, r, start)
    gpu_end = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(gpu_end, r, end)
    count = np.bincount(r, minlength=n)
    keep = np.flatnonzero(count)
    out = pd.DataFrame({
        "gpu_ops": count[keep], "kernels": np.bincount(r, weights=is_kernel, minlength=n)[keep],
        "gpu_ns": _sum_by(r, dur, n)[keep], "kernel_ns": _sum_by(r, np.where(is_kernel, dur, 0), n)[keep],
        "tc_ns": _sum_by(r, np.where(tc, dur, 0), n)[keep], "gpu_start": gpu_start[keep], "gpu_end": gpu_end[keep],
    }, index=pd.Index(keep, name="range_pos"))
    out["busy_ns"] = busy_ns(r, start, end)
    return out.astype("int64")


def _sum_by(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of `values` per key in [0, n): bincount (float64) while every sum is exactly
    representable (< 2**53), else an integer scatter-add."""
    if np.abs(values).sum() < 2**53:
        return np.rint(np.bincount(keys, weights=values, minlength=n)).astype(np.int64)
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, keys, values.astype(np.int64))
    return out


def nvtx_gpu_projection_summary(nvtx: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Per (range label, style), like nsys's nvtx_gpu_proj_sum: total projected ns (sum of each instance's
    first-op-to-last-op span), total range ns, instances, GPU ops; plus our busy and summed GPU ns."""
    cols = ["range", "style", "instances", "proj_ns", "range_ns", "gpu_ops", "busy_ns", "gpu_ns"]
    if nvtx.empty or stats.empty:
        return pd.DataFrame(columns=cols)
    df = nvtx.iloc[stats.index.to_numpy()].assign(
        range=lambda d: range_label(d["domain"], d["text"]), style=lambda d: d["style"].astype(str),
        proj=(stats["gpu_end"] - stats["gpu_start"]).to_numpy(), ops=stats["gpu_ops"].to_numpy(),
        busy=stats["busy_ns"].to_numpy(), gsum=stats["gpu_ns"].to_numpy())
    g = df.groupby(["range", "style"], sort=False)
    out = pd.DataFrame({"instances": g.size(), "proj_ns": g["proj"].sum(), "range_ns": g["duration_ns"].sum(),
                        "gpu_ops": g["ops"].sum(), "busy_ns": g["busy"].sum(), "gpu_ns": g["gsum"].sum()})
    return out.reset_index().sort_values("proj_ns", ascending=False, kind="stable").reset_index(drop=True)[cols]
