"""Roofline: where each measured layer sits under its GPU's ceilings.

Units throughout: time in ns, work in FLOPs (1 multiply-add = 2 FLOPs; INT8 ops
count the same way), traffic in bytes, rates in FLOP/s and bytes/s, arithmetic
intensity in FLOP/byte.

* :func:`roofline_ceilings` -- Tensor-Core roof, CUDA-core roof and memory roof
  of a GPU row (from :func:`profiler.model.gpu_specs.match_gpu`) at a precision.
* :func:`roofline_points` -- joins a layer table (``profiler.analysis.layers.layer_table``:
  ``name``, ``instances``, ``gpu_ns`` total over instances, optional
  ``tensor_core_share``, ``layer``) with per-layer costs (``onnx_node_costs``,
  ``module_costs`` or ``nvtx_op_costs``) by layer name, and places every layer.
* :func:`furthest_below_roof`, :func:`predict_layer_times`, :func:`roof_lines` --
  what a report or an app page shows.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from profiler.model.gpu_specs import memory_bandwidth, peak_flops

POINT_COLUMNS = [
    "name", "layer", "match", "nodes", "op_types", "instances", "time_ns", "flops", "bytes", "intensity",
    "achieved_flops_per_s", "achieved_bytes_per_s", "roof", "peak_flops_per_s", "ridge", "roof_flops_per_s",
    "tensor_roof_flops_per_s", "cuda_roof_flops_per_s", "bound", "fraction_of_roof", "below_roof_x",
    "time_at_roof_ns", "excess_ns", "above_roof", "share",
]


def roofline_ceilings(gpu: Mapping, precision: str = "fp16", *, use_measured: bool = False,
                      overrides: Mapping[str, float] | None = None) -> dict:
    """Ceilings of a GPU at a precision.

    Returns gpu, precision, tensor_core_flops and cuda_core_flops (FLOP/s; tensor may be
    None where the GPU lacks Tensor Cores for the precision), memory_bytes_per_s (bytes/s),
    tensor_core_ridge and cuda_core_ridge (FLOP/byte: intensity where a roof turns flat),
    source ("measured" when a measured value replaced a datasheet one).  ``overrides`` may
    set tensor_core_flops / cuda_core_flops / memory_bytes_per_s directly (e.g. from a
    run's own micro-benchmarks).
    """
    tensor = peak_flops(dict(gpu), precision, tensor=True, use_measured=use_measured)
    cuda = peak_flops(dict(gpu), precision, tensor=False, use_measured=use_measured)
    bandwidth = memory_bandwidth(dict(gpu), use_measured=use_measured)
    measured = use_measured and (tensor != peak_flops(dict(gpu), precision, tensor=True)
                                 or cuda != peak_flops(dict(gpu), precision, tensor=False)
                                 or bandwidth != memory_bandwidth(dict(gpu)))
    out = {"gpu": gpu.get("gpu"), "precision": precision, "tensor_core_flops": tensor,
           "cuda_core_flops": cuda, "memory_bytes_per_s": bandwidth,
           "source": "measured" if measured else "datasheet"}
    for key, value in (overrides or {}).items():
        out[key] = value
        out["source"] = "override"
    bw = out["memory_bytes_per_s"]
    out["tensor_core_ridge"] = out["tensor_core_flops"] / bw if out["tensor_core_flops"] and bw else None
    out["cuda_core_ridge"] = out["cuda_core_flops"] / bw if out["cuda_core_flops"] and bw else None
    return out


# --- name matching ------------------------------------------------------------------------------

_REFORMAT = re.compile(r"^(Reformatting CopyNode|\[?Reformat)|CopyNode for", re.I)
_CALL_SUFFIX = re.compile(r"^(.*?)(?:_(\d+))?$")


def module_path(name: str) -> str:
    """Dotted module path for a layer or node name.

    ``/layer1/layer1.0/conv1/Conv`` (ONNX node from torch.onnx) -> ``layer1.0.conv1``;
    ``/encoder/layers.0/self_attn/MatMul`` -> ``encoder.layers.0.self_attn``;
    a dotted torch module path is returned unchanged.
    """
    name = str(name).strip()
    if not name.startswith("/"):
        return name
    segments = [s for s in name.strip("/").split("/") if s]
    if len(segments) < 2:
        return name
    path = ""
    for seg in segments[:-1]:
        if path and seg.startswith(path + "."):
            path = seg
        elif path:
            path = f"{path}.{seg}"
        else:
            path = seg
    return path


def _split_call(path: str) -> tuple[str, int]:
    """``layer1.0.relu_2`` -> (``layer1.0.relu``, 2); ``layer1.0.relu`` -> (..., 0)."""
    head, _, last = path.rpartition(".")
    match = _CALL_SUFFIX.match(last)
    base, number = match.group(1), match.group(2)
    if number is None or not base:
        return path, 0
    return (f"{head}.{base}" if head else base), int(number)


def fused_parts(name: str) -> list[str]:
    """Node names inside a TensorRT layer name: ``A + B``, ``PWN(A, B)``,
    ``{ForeignNode[A...B]}`` (a range, kept as ``A...B``)."""
    text = re.sub(r"\{ForeignNode\[(.*)\]\}", r"\1", str(name))
    text = re.sub(r"\bPWN\(", " + ", text).replace(")", " ").replace("(", " ")
    parts = re.split(r"\s\+\s|,\s+|\s{2,}", text)
    return [p.strip() for p in parts if p.strip() and p.strip() != "+"]


class _CostIndex:
    """Lookups from a cost frame: by exact name, by module path, by module path without call suffix."""

    def __init__(self, costs: pd.DataFrame):
        self.costs = costs.reset_index(drop=True)
        self.by_name: dict[str, list[int]] = defaultdict(list)
        self.by_path: dict[str, list[int]] = defaultdict(list)
        self.by_base: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, name in enumerate(self.costs["name"].fillna("").astype(str)):
            self.by_name[name].append(i)
            path = module_path(name)
            if path:
                self.by_path[path].append(i)
                base, call = _split_call(path)
                self.by_base[base][call].append(i)
        self.order = {name: rows[0] for name, rows in self.by_name.items()}
        self.consumers: dict[str, list[int]] | None = None
        if {"input_names", "output_names", "output_bytes"} <= set(self.costs.columns):
            self.consumers = defaultdict(list)
            for i, names in enumerate(self.costs["input_names"]):
                for name in names or []:
                    if name:
                        self.consumers[name].append(i)

    def range_rows(self, token: str) -> list[int]:
        start, _, end = token.partition("...")
        if start in self.order and end in self.order and self.order[start] <= self.order[end]:
            return list(range(self.order[start], self.order[end] + 1))
        return []


def _sum_rows(costs: pd.DataFrame, rows: Sequence[int], divide: int = 1, consumers=None) -> dict:
    """Summed cost of some cost rows (divided by ``divide`` to average over calls).  With
    ``consumers`` (tensor name -> consuming row numbers), the rows are one fused kernel:
    tensors produced and consumed inside it are neither written nor read."""
    sub = costs.iloc[list(rows)]
    counted = sub[sub["counted"].astype(bool)] if "counted" in sub else sub
    tc = sub["tc_eligible"] if "tc_eligible" in sub else pd.Series(dtype=object)
    moved = float((counted["bytes_read"] + counted["bytes_written"]).sum())
    if consumers is not None and len(rows) > 1:
        moved -= _internal_bytes(costs, rows, consumers)
    return {
        "flops": float(counted["flops"].sum()) / divide if len(counted) else math.nan,
        "bytes": moved / divide if len(counted) else math.nan,
        "nodes": int(len(sub)),
        "op_types": "+".join(dict.fromkeys(v for v in sub["op_type"] if isinstance(v, str))) if "op_type" in sub else "",
        "tc_eligible": bool((tc == True).any()),  # noqa: E712
        "uncounted": int(len(sub) - len(counted)),
    }


def _internal_bytes(costs: pd.DataFrame, rows: Sequence[int], consumers) -> float:
    """Traffic of tensors that stay inside a fused group: the producer's write (when no node
    outside the group reads the tensor) and every read by a counting node of the group."""
    group = set(rows)
    saved = 0.0
    for r in rows:
        names, sizes = costs.at[r, "output_names"], costs.at[r, "output_bytes"]
        for name, size in zip(names or [], sizes or []):
            readers = consumers.get(name, [])
            if not size or not readers:
                continue  # a view, or a graph output
            inside = [c for c in readers if c in group]
            saved += size * sum(1 for c in inside if costs.at[c, "bytes_read"] > 0)
            if len(inside) == len(readers):
                saved += size
    return saved


def match_layer_costs(layers: pd.DataFrame, costs: pd.DataFrame,
                      layer_nodes: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Per layer row: flops and bytes per instance, matched node count, op types, and how
    it matched: "layer_info" (``layer_nodes`` maps a layer name to its ONNX nodes, e.g.
    from TensorRT's layer information), "exact" (same name), "fused" (parts of a TensorRT
    fused name such as ``A + B``), "module" (torch module path <-> ONNX scope name),
    "reformat" (TensorRT reformat copies: no model cost) or "none".

    A name occurring k times in the layers (a module called k times) takes the k-th
    call's cost when the costs have the same number of calls, else their average.
    """
    index = _CostIndex(costs)
    costs = index.costs
    order = layers["layer"] if "layer" in layers else pd.Series(range(len(layers)), index=layers.index)
    names = layers["name"].fillna("").astype(str)
    occurrence = pd.Series(0, index=layers.index)
    for name, grp in layers.assign(_o=order.to_numpy()).groupby(names, sort=False):
        occurrence.loc[grp.sort_values("_o", kind="stable").index] = range(len(grp))
    counts = names.value_counts()
    out = []
    for idx, name in names.items():
        occ, times = int(occurrence[idx]), int(counts[name])
        out.append(_match_one(name, occ, times, index, costs, layer_nodes))
    return pd.DataFrame(out, index=layers.index)


def _pick_call(calls: list[list[int]], occ: int, times: int, costs) -> dict:
    if len(calls) == times:
        return _sum_rows(costs, calls[occ])
    return _sum_rows(costs, [r for rows in calls for r in rows], divide=len(calls))


def _match_one(name, occ, times, index: _CostIndex, costs, layer_nodes) -> dict:
    empty = {"flops": math.nan, "bytes": math.nan, "nodes": 0, "op_types": "", "tc_eligible": False,
             "uncounted": 0}
    if _REFORMAT.search(name):
        return {**empty, "match": "reformat"}
    if layer_nodes and layer_nodes.get(name):
        rows = [r for node in layer_nodes[name] for r in index.by_name.get(str(node), [])[:1]]
        if rows:
            return {**_sum_rows(costs, rows, consumers=index.consumers), "match": "layer_info"}
    if name in index.by_name:
        rows = index.by_name[name]
        calls = [[r] for r in rows]
        return {**(_pick_call(calls, occ, times, costs) if len(rows) > 1 else _sum_rows(costs, rows)),
                "match": "exact"}
    parts = fused_parts(name)
    if len(parts) > 1 or (parts and parts[0] != name):
        rows = []
        for part in parts:
            if part in index.by_name:
                rows.extend(index.by_name[part][:1])
            elif "..." in part:
                rows.extend(index.range_rows(part))
        if rows:
            return {**_sum_rows(costs, list(dict.fromkeys(rows)), consumers=index.consumers), "match": "fused"}
    path = module_path(name)
    base, call = _split_call(path)
    group = index.by_base.get(base)
    if times > 1 and group and len(group) > 1:
        calls = [group[c] for c in sorted(group)]
        return {**_pick_call(calls, occ, times, costs), "match": "module"}
    if path in index.by_path:
        return {**_sum_rows(costs, index.by_path[path]), "match": "module"}
    return {**empty, "match": "none"}


# --- placing layers -----------------------------------------------------------------------------

def roofline_points(layers: pd.DataFrame, costs: pd.DataFrame, gpu: Mapping, precision: str = "fp16", *,
                    use_measured: bool = False, overrides: Mapping[str, float] | None = None,
                    layer_nodes: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """One row per layer with its place under the roofs.

    layers: ``name``, ``instances``, ``gpu_ns`` (total GPU ns over all instances; per-instance
    time = gpu_ns / instances), optional ``tensor_core_share`` (0..1), ``layer``, ``share``,
    ``precision`` (per-layer precision overriding ``precision``).
    costs: per-node/per-module frame with ``name``, ``flops``, ``bytes_read``, ``bytes_written``
    (per execution), ``op_type``, ``tc_eligible``, ``counted``.
    Output columns (POINT_COLUMNS): time_ns per instance, flops and bytes per instance,
    intensity (FLOP/B), achieved_flops_per_s, achieved_bytes_per_s, roof ("tensor core" when
    the layer's kernels used Tensor Cores -- or, without that column, when a matched node is
    Tensor-Core eligible -- else "CUDA core"), peak_flops_per_s of that roof, ridge (FLOP/B),
    roof_flops_per_s = min(peak, intensity x bandwidth), tensor/cuda roofs at that intensity,
    bound ("memory" below the ridge, else "compute"), fraction_of_roof = achieved / roof,
    below_roof_x = roof / achieved, time_at_roof_ns, excess_ns = time - time at roof,
    above_roof (achieved over the roof by more than 1 %).  The memory roof is DRAM bandwidth:
    a small memory-bound layer whose input is still in L2 (e.g. a ReLU right after its conv)
    can sit above it; a compute-bound layer above its roof means a counting or mapping error.
    """
    matched = match_layer_costs(layers, costs, layer_nodes)
    instances = pd.to_numeric(layers["instances"], errors="coerce").replace(0, np.nan)
    time_ns = pd.to_numeric(layers["gpu_ns"], errors="coerce") / instances
    flops, moved = matched["flops"], matched["bytes"]
    time_s = (time_ns * 1e-9).where(time_ns > 0)
    intensity = flops / moved.where(moved > 0)
    achieved = flops / time_s
    achieved_bw = moved / time_s

    precisions = layers["precision"].fillna(precision) if "precision" in layers else \
        pd.Series(precision, index=layers.index)
    ceilings = {p: roofline_ceilings(gpu, str(p), use_measured=use_measured, overrides=overrides)
                for p in precisions.unique()}
    tensor_peak = precisions.map(lambda p: ceilings[p]["tensor_core_flops"] or np.nan).astype(float)
    cuda_peak = precisions.map(lambda p: ceilings[p]["cuda_core_flops"] or np.nan).astype(float)
    bandwidth = precisions.map(lambda p: ceilings[p]["memory_bytes_per_s"]).astype(float)
    if "tensor_core_share" in layers:
        uses_tc = pd.to_numeric(layers["tensor_core_share"], errors="coerce").fillna(0) > 0
    else:
        uses_tc = matched["tc_eligible"].astype(bool)
    uses_tc = uses_tc & tensor_peak.notna()
    peak = tensor_peak.where(uses_tc, cuda_peak)
    memory_roof = intensity * bandwidth
    roof = np.minimum(peak, memory_roof)
    ridge = peak / bandwidth
    points = pd.DataFrame({
        "name": layers["name"].fillna("").astype(str),
        "layer": layers["layer"] if "layer" in layers else np.arange(len(layers)),
        "match": matched["match"], "nodes": matched["nodes"], "op_types": matched["op_types"],
        "instances": layers["instances"], "time_ns": time_ns, "flops": flops, "bytes": moved,
        "intensity": intensity, "achieved_flops_per_s": achieved, "achieved_bytes_per_s": achieved_bw,
        "roof": np.where(uses_tc, "tensor core", "CUDA core"), "peak_flops_per_s": peak, "ridge": ridge,
        "roof_flops_per_s": roof, "tensor_roof_flops_per_s": np.minimum(tensor_peak, memory_roof),
        "cuda_roof_flops_per_s": np.minimum(cuda_peak, memory_roof),
        "bound": np.where(intensity.isna(), None, np.where(intensity < ridge, "memory", "compute")),
        "fraction_of_roof": achieved / roof.where(roof > 0),
        "below_roof_x": roof / achieved.where(achieved > 0),
        "time_at_roof_ns": flops / roof.where(roof > 0) * 1e9,
        "share": layers["share"] if "share" in layers else np.nan,
    }, index=layers.index)
    points["excess_ns"] = points["time_ns"] - points["time_at_roof_ns"]
    points["above_roof"] = (points["fraction_of_roof"] > 1.01).fillna(False)
    return points[POINT_COLUMNS].reset_index(drop=True)


def furthest_below_roof(points: pd.DataFrame, n: int = 5, *, by: str = "fraction_of_roof") -> pd.DataFrame:
    """The n placed layers furthest below their roof (smallest ``fraction_of_roof``), or with
    the most time lost when ``by="excess_ns"``.  Layers without FLOPs or time are skipped."""
    placed = points[(points["flops"] > 0) & points["fraction_of_roof"].notna()]
    ascending = by != "excess_ns"
    return placed.sort_values(by, ascending=ascending).head(n).reset_index(drop=True)


def predict_layer_times(costs: pd.DataFrame, gpu: Mapping, precision: str = "fp16", *,
                        use_measured: bool = False) -> pd.DataFrame:
    """Static prediction per node/module: the roofline lower bound on time.

    predicted_ns = max(flops / peak, bytes / bandwidth) x 1e9, with the Tensor-Core peak
    for Tensor-Core eligible rows and the CUDA-core peak otherwise; adds ``roof``,
    ``bound`` and ``predicted_share`` (of the summed prediction).  Rows without a formula
    keep NaN.
    """
    ceilings = roofline_ceilings(gpu, precision, use_measured=use_measured)
    tensor = ceilings["tensor_core_flops"] or np.nan
    cuda = ceilings["cuda_core_flops"] or np.nan
    bandwidth = ceilings["memory_bytes_per_s"]
    uses_tc = (costs["tc_eligible"] == True) & (not math.isnan(tensor))  # noqa: E712
    peak = pd.Series(np.where(uses_tc, tensor, cuda), index=costs.index)
    moved = costs["bytes_read"] + costs["bytes_written"]
    compute_s = costs["flops"] / peak
    memory_s = moved / bandwidth
    out = costs.copy()
    out["roof"] = np.where(uses_tc, "tensor core", "CUDA core")
    out["predicted_ns"] = np.fmax(compute_s, memory_s) * 1e9
    out.loc[costs["flops"].isna(), "predicted_ns"] = np.nan
    out["bound"] = np.where(out["predicted_ns"].isna() | (out["predicted_ns"] == 0), None,
                            np.where(memory_s >= compute_s, "memory", "compute"))
    total = out["predicted_ns"].sum()
    out["predicted_share"] = out["predicted_ns"] / total if total else np.nan
    return out


def roof_lines(ceilings: Mapping, x_min: float = 0.01, x_max: float = 1e4, points: int = 200) -> pd.DataFrame:
    """Log-spaced intensity grid (FLOP/B) with the attainable FLOP/s under each roof, for plotting:
    memory (bandwidth x intensity), tensor_core and cuda_core (min of peak and memory)."""
    x = np.logspace(math.log10(x_min), math.log10(x_max), points)
    bw = ceilings["memory_bytes_per_s"]
    frame = pd.DataFrame({"intensity": x, "memory": x * bw})
    for key, column in (("tensor_core_flops", "tensor_core"), ("cuda_core_flops", "cuda_core")):
        peak = ceilings.get(key)
        frame[column] = np.minimum(peak, x * bw) if peak else np.nan
    return frame


# --- a captured run -----------------------------------------------------------------------------

def _run_metadata(run_dir_or_metadata) -> tuple[dict, "Path | None"]:
    """(metadata dict, run folder or None) from a run folder, a metadata.json path or a dict."""
    import json
    from pathlib import Path

    if run_dir_or_metadata is None:
        return {}, None
    if isinstance(run_dir_or_metadata, Mapping):
        return dict(run_dir_or_metadata), None
    path = Path(run_dir_or_metadata)
    folder = path if path.is_dir() else path.parent
    meta_file = folder / "metadata.json"
    try:
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    except (OSError, ValueError):
        meta = {}
    return (meta if isinstance(meta, dict) else {}), folder


def _run_gpu(analysis, meta: Mapping, gpu) -> dict | None:
    """GPU table row: ``gpu`` (a row dict or a name) if given, else the trace's device
    (with its SM count), else metadata.json's ``gpu``."""
    from profiler.model.gpu_specs import match_gpu

    if isinstance(gpu, Mapping):
        return dict(gpu)
    if isinstance(gpu, str):
        return match_gpu(gpu)
    device = getattr(getattr(analysis, "trace", None), "device", None) or {}
    name, sm = device.get("name"), device.get("sm_count")
    row = match_gpu(name, sm_count=int(sm) if sm else None) if name else None
    if row is None and name:
        row = match_gpu(name)
    if row is None:
        mg = meta.get("gpu")
        mname = mg.get("name") if isinstance(mg, Mapping) else mg
        row = match_gpu(str(mname)) if mname else None
    return row


def run_roofline(analysis, run_dir_or_metadata=None, precision: str | None = None, *, gpu=None,
                 use_measured: bool = False) -> pd.DataFrame:
    """Roofline points of a captured run's layers (one row per layer of ``analysis.layers``).

    analysis: :class:`profiler.analysis.summary.Analysis` (``.layers``, ``.trace.device``).
    run_dir_or_metadata: the run folder (``metadata.json``, ``modules.json``), a metadata dict,
    or None.  Costs come from ``modules.json`` (one record per leaf-module call, layer names =
    module paths) via :func:`profiler.model.torch_cost.module_costs`; without it, from the layer
    names themselves when they are ``emit_nvtx`` op texts (``aten::conv2d, ... sizes = [...]``)
    via ``nvtx_op_costs``.  precision: the tensors' width ("fp16", "fp32", ...); default the
    metadata's ``precision``, else "fp16".  gpu: a GPU table row or name overriding the trace's
    device (matched with :func:`profiler.model.gpu_specs.match_gpu`).

    Returns :func:`roofline_points`'s frame (time ns per instance, FLOPs and bytes per instance,
    FLOP/B, FLOP/s) with ``attrs``: ``gpu`` (row dict or None), ``precision``, ``ceilings``
    (:func:`roofline_ceilings`, or None), ``cost_source`` ("modules.json", "emit_nvtx" or
    None), ``note`` (why nothing could be placed, else ""), ``placed`` (rows with FLOPs and a
    time).  Never raises for a run without costs or an unknown GPU: the frame is empty or
    unplaced and ``note`` says why.
    """
    from profiler.model.torch_cost import load_modules_json, module_costs, nvtx_op_costs, parse_nvtx_op

    meta, folder = _run_metadata(run_dir_or_metadata)
    precision = str(precision or meta.get("precision") or "fp16").lower()
    layers = getattr(analysis, "layers", None)
    attrs = {"gpu": None, "precision": precision, "ceilings": None, "cost_source": None, "note": "",
             "placed": 0}

    def empty(note: str) -> pd.DataFrame:
        frame = pd.DataFrame(columns=POINT_COLUMNS)
        frame.attrs.update({**attrs, "note": note})
        return frame

    row = _run_gpu(analysis, meta, gpu)
    if row is None:
        device = (getattr(getattr(analysis, "trace", None), "device", None) or {}).get("name")
        return empty(f"GPU {device or 'unknown'!r} is not in data/gpu_specs.csv: no roofs to draw")
    attrs["gpu"] = row
    attrs["ceilings"] = roofline_ceilings(row, precision, use_measured=use_measured)
    if layers is None or not len(layers):
        return empty("the trace has no layer ranges (NVTX) to place")

    costs = None
    modules = folder / "modules.json" if folder is not None else None
    if modules is not None and modules.is_file():
        try:
            records = load_modules_json(modules)
        except (OSError, ValueError):
            records = []
        if records:
            costs = module_costs(records, precision=precision)
            attrs["cost_source"] = "modules.json"
    if costs is None:
        names = layers["name"].dropna().astype(str)
        texts = [n for n in names.unique() if parse_nvtx_op(n) is not None]
        if texts:
            costs = nvtx_op_costs(texts, precision=precision)
            attrs["cost_source"] = "emit_nvtx"
    if costs is None or not len(costs):
        return empty("no model costs for this run: no modules.json next to the trace and the layer names "
                     "are not emit_nvtx op texts")

    table = layers.copy()
    if "precision" in table:  # per-layer precisions (TensorRT layer info) override the run's
        table["precision"] = table["precision"].where(
            table["precision"].isin(["fp32", "tf32", "fp16", "bf16", "int8", "fp8"]), precision)
    points = roofline_points(table, costs, row, precision, use_measured=use_measured)
    if "op" in layers:
        points.insert(2, "op", layers["op"].to_numpy())
    attrs["placed"] = int(((points["flops"] > 0) & points["fraction_of_roof"].notna()).sum())
    if not attrs["placed"]:
        attrs["note"] = f"no layer matched a {attrs['cost_source']} cost"
    points.attrs.update(attrs)
    return points
