"""Pipeline stages (preprocess / inference / postprocess) and iterations, from NVTX ranges."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DEFAULT_STAGES = ("preprocess", "inference", "postprocess")
DEFAULT_ITERATION = r"iteration_\d+"


def iteration_ranges(nvtx: pd.DataFrame, pattern: str = DEFAULT_ITERATION) -> pd.DataFrame:
    """NVTX ranges whose text matches `pattern` (whole text): the harness's per-iteration ranges, by start."""
    text = nvtx["text"].astype("category")
    matching = [c for c in text.cat.categories if re.fullmatch(pattern, str(c))]
    return nvtx[text.isin(matching).to_numpy()].sort_values("start", kind="stable")


def stage_ranges(nvtx: pd.DataFrame, stages=DEFAULT_STAGES) -> pd.DataFrame:
    """NVTX ranges named like a stage; positional index into `nvtx` kept as column `pos`."""
    pos = np.flatnonzero(nvtx["text"].isin(list(stages)).to_numpy())
    return nvtx.iloc[pos].assign(pos=pos)


def stage_table(nvtx: pd.DataFrame, stats: pd.DataFrame, stages=DEFAULT_STAGES,
                iteration: str = DEFAULT_ITERATION) -> pd.DataFrame:
    """Per stage: instances, total_ns (wall), gpu_ns (busy: union of its GPU work), gpu_sum_ns, share.

    `stats` is ranges.range_gpu_stats (indexed by row position in `nvtx`). share = stage wall time /
    iteration wall time, over the iterations that contain stages (when the trace has no iteration ranges,
    over the span from the first stage's start to the last stage's end); shares sum to at most 1 and the
    rest is `other` (Python, synchronisation, gaps between stages). Ends with a row `other`.
    """
    cols = ["name", "instances", "total_ns", "avg_ns", "med_ns", "gpu_ns", "gpu_sum_ns", "share"]
    st = stage_ranges(nvtx, stages)
    if st.empty:
        return pd.DataFrame(columns=cols)
    its = iteration_ranges(nvtx, iteration)
    parents = set(st["parent"])
    its = its[its["range_id"].isin(parents)]
    denom = its["duration_ns"].sum() if len(its) else st["end"].max() - st["start"].min()
    if len(its):  # only stage instances inside a measured iteration count (warm-up ranges are left out)
        st = st[st["parent"].isin(set(its["range_id"]))]
    gpu = stats.reindex(st["pos"].to_numpy()).fillna(0)
    st = st.assign(gpu_ns=gpu["busy_ns"].to_numpy(), gpu_sum=gpu["gpu_ns"].to_numpy())
    rows = []
    for name in stages:
        s = st[st["text"] == name]
        if s.empty:
            continue
        rows.append({"name": name, "instances": len(s), "total_ns": int(s["duration_ns"].sum()),
                     "avg_ns": float(s["duration_ns"].mean()), "med_ns": float(s["duration_ns"].median()),
                     "gpu_ns": int(s["gpu_ns"].sum()), "gpu_sum_ns": int(s["gpu_sum"].sum()),
                     "share": float(s["duration_ns"].sum() / denom) if denom else 0.0})
    out = pd.DataFrame(rows, columns=cols)
    other = max(0.0, 1.0 - out["share"].sum())
    n_it = len(its) if len(its) else 1
    out.loc[len(out)] = {"name": "other", "instances": n_it, "total_ns": int(round(other * denom)),
                         "avg_ns": other * denom / n_it, "med_ns": np.nan, "gpu_ns": 0, "gpu_sum_ns": 0,
                         "share": other}
    return out


def per_iteration_stages(nvtx: pd.DataFrame, stages=DEFAULT_STAGES, iteration: str = DEFAULT_ITERATION
                         ) -> pd.DataFrame:
    """Wall ns of each stage in each iteration (rows: iterations by start; columns: stages + other, total)."""
    its = iteration_ranges(nvtx, iteration)
    st = stage_ranges(nvtx, stages)
    if its.empty or st.empty:
        return pd.DataFrame()
    st = st[st["parent"].isin(set(its["range_id"]))]
    wide = st.pivot_table(index="parent", columns="text", values="duration_ns", aggfunc="sum").reindex(
        its["range_id"]).fillna(0)
    wide = wide.reindex(columns=[s for s in stages if s in wide.columns])
    wide["total"] = its.set_index("range_id")["duration_ns"]
    wide["other"] = (wide["total"] - wide[[s for s in stages if s in wide.columns]].sum(axis=1)).clip(lower=0)
    wide.index = [re.sub(r"\D", "", t) or t for t in its["text"]]
    wide.index.name = "iteration"
    return wide.reset_index()


def dominant_stage_sentence(stage_df: pd.DataFrame) -> str:
    """A plain sentence on what dominates iteration time, e.g. 'preprocess takes 53% of each iteration...'."""
    if stage_df.empty:
        return "No preprocess / inference / postprocess ranges were found in this trace."
    top = stage_df.sort_values("share", ascending=False).iloc[0]
    inf = stage_df.loc[stage_df["name"] == "inference", "share"]
    inf_share = float(inf.iloc[0]) if len(inf) else 0.0
    if top["name"] == "inference":
        return f"Inference dominates: {inf_share:.0%} of iteration time; pre/post-processing and the rest take {1 - inf_share:.0%}."
    return (f"{top['name'].capitalize()} dominates: {top['share']:.0%} of iteration time, while inference "
            f"itself takes {inf_share:.0%}. Speeding up the model alone cannot make iterations much faster.")
