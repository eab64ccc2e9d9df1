"""Memory-operation summary per operation, as nsys's cuda_gpu_mem_time_sum and cuda_gpu_mem_size_sum."""

from __future__ import annotations

import pandas as pd


def memory_ops(memcpy: pd.DataFrame, memset: pd.DataFrame) -> pd.DataFrame:
    """Copies and memsets in one frame with an `operation` label ("Host-to-Device", ..., "memset")."""
    cols = ["operation", "start", "end", "duration_ns", "bytes", "stream_id", "correlation_id"]
    parts = []
    if len(memcpy):
        parts.append(memcpy.assign(operation=memcpy["operation"].astype(str))[cols])
    if len(memset):
        parts.append(memset.assign(operation="memset")[cols])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def memory_summary(memcpy: pd.DataFrame, memset: pd.DataFrame) -> pd.DataFrame:
    """One row per operation: count, total/avg/med/min/max ns, total_bytes, time_pct; by total time, desc."""
    ops = memory_ops(memcpy, memset)
    cols = ["operation", "count", "total_ns", "avg_ns", "med_ns", "min_ns", "max_ns", "std_ns", "total_bytes",
            "time_pct"]
    if ops.empty:
        return pd.DataFrame(columns=cols)
    g = ops.groupby("operation", sort=False)
    out = g["duration_ns"].agg(count="size", total_ns="sum", avg_ns="mean", med_ns="median", min_ns="min",
                               max_ns="max", std_ns="std").reset_index()
    out["std_ns"] = out["std_ns"].fillna(0.0)
    out["total_bytes"] = g["bytes"].sum().to_numpy().astype("int64")
    out["time_pct"] = 100.0 * out["total_ns"] / out["total_ns"].sum()
    return out.sort_values("total_ns", ascending=False, kind="stable").reset_index(drop=True)[cols]
