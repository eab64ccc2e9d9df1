"""Per-layer table: the NVTX ranges directly under the inference stage, one row per layer position.

Works for TensorRT's per-layer ranges, PyTorch per-module ranges (text = module path) and PyTorch
`emit_nvtx` op ranges (`aten::conv2d, op_id = 12, sizes = [...]`). The k-th layer range of every
inference instance is one row (k = order of start within the instance; ranges of different names at the
same position stay separate rows).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from profiler.analysis.stages import iteration_ranges

_OP_ID = re.compile(r",\s*op_id\s*=\s*\d+")
_INPUT_OP_IDS = re.compile(r",\s*input_op_ids\s*=\s*\[.*\]\s*$")
_SEQ = re.compile(r",\s*seq\s*=\s*\d+")

LAYER_COLUMNS = ["layer", "name", "op", "instances", "gpu_ns", "gpu_med_ns", "wall_ns", "kernels", "share",
                 "kernel_ns", "tc_ns", "tensor_core_share", "dominant_kernel", "dominant_kernel_ns"]


def layer_name(text: str) -> str:
    """A layer's name across iterations: drops emit_nvtx's per-call `op_id`, `seq`, `input_op_ids` parts."""
    return _INPUT_OP_IDS.sub("", _SEQ.sub("", _OP_ID.sub("", text))).strip()


def layer_op(name: str) -> str:
    """The operation part of a layer name: 'aten::conv2d' from an emit_nvtx text, else the name itself."""
    return name.split(",", 1)[0].strip()


def inference_instances(nvtx: pd.DataFrame, stage: str = "inference", iteration: str = r"iteration_\d+"
                        ) -> pd.DataFrame:
    """The `stage` ranges to take layers from; inside measured iterations when the trace marks them."""
    inf = nvtx[nvtx["text"] == stage]
    its = iteration_ranges(nvtx, iteration)
    if len(its) and inf["parent"].isin(set(its["range_id"])).any():
        inf = inf[inf["parent"].isin(set(its["range_id"]))]
    return inf


def layer_ranges(nvtx: pd.DataFrame, stage: str = "inference", depth: int = 0, domain: str | None = None
                 ) -> pd.DataFrame:
    """Layer ranges with `instance` (the inference range_id) and `layer` (position k within it), plus `pos`.

    Children of the inference ranges; a lone wrapper (every instance has exactly one child, e.g. an
    engine's enqueue range or the model's root module) is skipped. `depth` > 0 goes that many levels
    deeper; `domain` keeps only layer ranges of that NVTX domain.
    """
    base = inference_instances(nvtx, stage)
    owner = pd.Series(base["range_id"].to_numpy(), index=base["range_id"].to_numpy())  # range -> instance
    parent = nvtx["parent"]

    def children(of) -> pd.DataFrame:
        pos = np.flatnonzero(parent.isin(of).to_numpy())
        return nvtx.iloc[pos].assign(pos=pos)

    level = children(owner.index)
    for _ in range(8):  # skip lone wrappers
        per_instance = level.groupby("parent").size()
        if level.empty or not (per_instance == 1).all() or len(per_instance) != len(owner.unique()):
            break
        inner = children(level["range_id"])
        if inner.empty:
            break
        owner = pd.concat([owner, pd.Series(owner.reindex(level["parent"]).to_numpy(), index=level["range_id"])])
        level = inner
    for _ in range(depth):
        owner = pd.concat([owner, pd.Series(owner.reindex(level["parent"]).to_numpy(), index=level["range_id"])])
        level = children(level["range_id"])
    if domain is not None:
        level = level[level["domain"].astype(str) == domain]
    # instance = the inference range this layer range sits under (walk up through skipped levels)
    level = level.assign(instance=owner.reindex(level["parent"]).to_numpy())
    level = level.sort_values(["instance", "start"], kind="stable")
    level["layer"] = level.groupby("instance").cumcount()
    text = level["text"].astype("category")
    level["name"] = text.cat.rename_categories(lambda t: t).map(layer_name).astype(str)
    return level


def layer_table(nvtx: pd.DataFrame, projected: pd.DataFrame, pairs: pd.DataFrame, stats: pd.DataFrame,
                stage: str = "inference", depth: int = 0, domain: str | None = None) -> pd.DataFrame:
    """One row per layer position: instances, gpu_ns (total), gpu_med_ns (median per instance), wall_ns,
    kernels (launches per instance), share (of inference GPU time), tensor_core_share (of kernel time),
    dominant_kernel (most GPU time). `projected`, `pairs`, `stats` come from profiler.analysis.ranges
    (stats with Tensor-Core ns)."""
    lr = layer_ranges(nvtx, stage, depth, domain)
    if lr.empty:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    st = stats.reindex(lr["pos"].to_numpy()).fillna(0)
    lr = lr.assign(gpu_ns=st["gpu_ns"].to_numpy(), kernels=st["kernels"].to_numpy(),
                   kernel_ns=st["kernel_ns"].to_numpy(), tc_ns=st["tc_ns"].to_numpy())
    key = ["layer", "name"]
    g = lr.groupby(key, sort=False)
    out = pd.DataFrame({
        "instances": g.size(), "gpu_ns": g["gpu_ns"].sum(), "gpu_med_ns": g["gpu_ns"].median(),
        "wall_ns": g["duration_ns"].sum(), "kernels": g["kernels"].mean(), "kernel_ns": g["kernel_ns"].sum(),
        "tc_ns": g["tc_ns"].sum(),
    }).reset_index()
    instance_pos = np.flatnonzero(nvtx["range_id"].isin(set(lr["instance"])).to_numpy())
    total = stats.reindex(instance_pos)["gpu_ns"].sum()  # all GPU time of the inference stage
    out["share"] = out["gpu_ns"] / total if total else 0.0
    out["tensor_core_share"] = np.where(out["kernel_ns"] > 0, out["tc_ns"] / out["kernel_ns"].where(
        out["kernel_ns"] > 0, 1), 0.0)
    out["op"] = out["name"].map(layer_op)
    dom = dominant_kernels(lr, projected, pairs)
    out = out.merge(dom, on=key, how="left")
    out["dominant_kernel"] = out["dominant_kernel"].fillna("")
    out["dominant_kernel_ns"] = out["dominant_kernel_ns"].fillna(0).astype("int64")
    return out.sort_values("layer", kind="stable").reset_index(drop=True)[LAYER_COLUMNS]


def dominant_kernels(lr: pd.DataFrame, projected: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per (layer, name): the kernel name with the most total ns under those ranges, and its ns."""
    cols = ["layer", "name", "dominant_kernel", "dominant_kernel_ns"]
    sub = pairs[pairs["range_pos"].isin(set(lr["pos"]))]
    if sub.empty:
        return pd.DataFrame(columns=cols)
    op = sub["op"].to_numpy()
    is_k = (projected["kind"].to_numpy() == "kernel")[op]
    names = projected["name"].astype("category")
    ranges = lr.set_index("pos")[["layer"]].assign(key=pd.factorize(lr["name"])[0]).reindex(
        sub["range_pos"].to_numpy())
    frame = pd.DataFrame({"layer": ranges["layer"].to_numpy()[is_k], "key": ranges["key"].to_numpy()[is_k],
                          "kernel": names.cat.codes.to_numpy()[op][is_k],
                          "ns": projected["duration_ns"].to_numpy()[op][is_k]})
    if frame.empty:
        return pd.DataFrame(columns=cols)
    per = frame.groupby(["layer", "key", "kernel"], sort=False)["ns"].sum().reset_index()
    top = per.sort_values("ns", ascending=False, kind="stable").drop_duplicates(["layer", "key"])
    layer_names = pd.factorize(lr["name"])[1]
    return pd.DataFrame({"layer": top["layer"].to_numpy(), "name": np.asarray(layer_names, dtype=object)[top["key"]],
                         "dominant_kernel": np.asarray(names.cat.categories, dtype=object)[top["kernel"]],
                         "dominant_kernel_ns": top["ns"].to_numpy()})


def kernels_of_layer(lr: pd.DataFrame, projected: pd.DataFrame, pairs: pd.DataFrame, layer: int
                     ) -> pd.DataFrame:
    """Drill-down: the GPU operations launched under layer position `layer`, per name: count, total ns."""
    pos = set(lr.loc[lr["layer"] == layer, "pos"])
    sub = pairs[pairs["range_pos"].isin(pos)]
    ops = projected.iloc[sub["op"].to_numpy()]
    if ops.empty:
        return pd.DataFrame(columns=["name", "kind", "count", "total_ns"])
    g = ops.groupby(["name", "kind"], sort=False)["duration_ns"]
    return g.agg(count="size", total_ns="sum").reset_index().sort_values("total_ns", ascending=False,
                                                                          ignore_index=True)
