"""The summary of one trace: every table the CLI, the JSON contract and the dashboard start from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from profiler.analysis import kernels as kernels_mod
from profiler.analysis import layers as layers_mod
from profiler.analysis import memory, ranges, stages, tensor_cores
from profiler.analysis.copies import copy_findings
from profiler.errors import TraceError
from profiler.trace import Trace


@dataclass
class Analysis:
    """All frames computed from one trace (kept together so pages and reports share one computation)."""

    trace: Trace
    kernel_summary: pd.DataFrame
    memory_summary: pd.DataFrame
    nvtx_summary: pd.DataFrame
    projected: pd.DataFrame  # gpu_ops + launching call + range_pos
    pairs: pd.DataFrame  # (range_pos, op) over every enclosing range
    range_stats: pd.DataFrame  # per range_pos
    stages: pd.DataFrame
    per_iteration: pd.DataFrame
    layers: pd.DataFrame
    tensor_core_share: float
    tensor_active: dict = field(default_factory=dict)


def analyze(trace: Trace, stage_names=stages.DEFAULT_STAGES, iteration: str = stages.DEFAULT_ITERATION,
            layer_depth: int = 0, layer_domain: str | None = None) -> Analysis:
    """Compute every analysis table of a trace. Raises TraceError when the trace holds no GPU activity."""
    gpu_ops = trace.gpu_ops
    if gpu_ops.empty:
        raise TraceError(f"{trace.source.name}: no GPU activity (no kernels, copies or memsets) in this trace")
    nvtx = trace.nvtx
    projected = ranges.project_gpu_ops(nvtx, gpu_ops, trace.api)
    tc = pd.Series(np.zeros(len(projected), dtype=bool))
    is_kernel = projected["kind"] == "kernel"
    if is_kernel.any():
        tc[is_kernel.to_numpy()] = kernels_mod.tensor_core_flags(projected.loc[is_kernel, "name"]).to_numpy()
    projected["tensor_core"] = tc.to_numpy()
    pairs = ranges.range_op_pairs(nvtx, projected)
    stats = ranges.range_gpu_stats(nvtx, projected, projected["tensor_core"], pairs)
    stage_df = stages.stage_table(nvtx, stats, stage_names, iteration)
    layer_df = layers_mod.layer_table(nvtx, projected, pairs, stats, depth=layer_depth, domain=layer_domain)
    ks = kernels_mod.kernel_summary(trace.kernels)
    tc_share = float(ks.loc[ks["tensor_core"], "total_ns"].sum() / ks["total_ns"].sum()) if len(ks) else 0.0
    active = trace.gpu_metric(tensor_cores.TENSOR_ACTIVE)
    tensor_active = {}
    if len(active):
        st = stages.stage_ranges(nvtx, stage_names)
        vals = tensor_cores.metric_in_windows(active, st["start"].to_numpy(), st["end"].to_numpy())
        per = pd.Series(vals).groupby(st["text"].to_numpy()).mean()
        tensor_active = {k: (None if np.isnan(v) else float(v)) for k, v in per.items()}
        if len(layer_df):
            lr = layers_mod.layer_ranges(nvtx, depth=layer_depth, domain=layer_domain)
            lv = tensor_cores.metric_in_windows(active, lr["start"].to_numpy(), lr["end"].to_numpy())
            per_layer = pd.Series(lv).groupby([lr["layer"].to_numpy(), lr["name"].to_numpy()]).mean()
            layer_df["tensor_active_pct"] = [per_layer.get((k, n), np.nan) for k, n in
                                             zip(layer_df["layer"], layer_df["name"])]
    return Analysis(trace, ks, memory.memory_summary(trace.memcpy, trace.memset), ranges.nvtx_summary(nvtx),
                    projected, pairs, stats, stage_df, stages.per_iteration_stages(nvtx, stage_names, iteration),
                    layer_df, tc_share, tensor_active)


def _records(df: pd.DataFrame, cols: dict[str, str]) -> list[dict]:
    out = []
    for row in df[list(cols)].itertuples(index=False):
        rec = {}
        for key, value in zip(cols.values(), row):
            if isinstance(value, (np.integer,)):
                value = int(value)
            elif isinstance(value, (np.floating, float)):
                value = None if np.isnan(value) else float(value)
            elif isinstance(value, np.bool_):
                value = bool(value)
            rec[key] = value
        out.append(rec)
    return out


def to_json(a: Analysis) -> dict:
    """The JSON contract of `profiler summarize --json` (keys documented in README; add, never rename)."""
    t = a.trace
    return {
        "trace": {"source": str(t.source), "nsys_version": t.metadata.get("EXPORT_PRODUCT_VERSION"),
                  "schema_version": t.metadata.get("EXPORT_SCHEMA_VERSION"), "warnings": list(t.warnings)},
        "device": t.device,
        "kernels": _records(a.kernel_summary, {c: c for c in ["name", "instances", "total_ns", "avg_ns", "med_ns",
                                                              "min_ns", "max_ns", "std_ns", "tensor_core"]}),
        "memory_ops": _records(a.memory_summary, {"operation": "operation", "count": "count",
                                                  "total_ns": "total_ns", "total_bytes": "total_bytes",
                                                  "avg_ns": "avg_ns", "med_ns": "med_ns"}),
        "stages": _records(a.stages, {c: c for c in ["name", "instances", "total_ns", "gpu_ns", "share",
                                                     "med_ns"]}),
        "layers": _records(a.layers, {c: c for c in ["name", "instances", "gpu_ns", "kernels", "tensor_core_share",
                                                     "gpu_med_ns", "share", "dominant_kernel", "layer", "op"]}),
        "tensor_cores": {"share_of_kernel_time": a.tensor_core_share, "tensor_active_pct": a.tensor_active},
        "nvtx_ranges": int(len(t.nvtx)),
        "copy_findings": copy_findings(a),
    }


def summarize(trace: Trace, **options) -> dict:
    """analyze() then to_json(): the summary dict of a trace."""
    return to_json(analyze(trace, **options))
