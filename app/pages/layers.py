"""Layers: the per-layer table (GPU time, share of inference, kernels, Tensor-Core share, dominant kernel,
precision where the run recorded it), a bar chart of the top layers, and a drill-down to one layer's kernels."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import charts
import common
from profiler.analysis.layers import kernels_of_layer

run = common.require_run()
a = common.load_analysis(run)
st.title("Layers")
layers = a.layers
if layers.empty:
    st.info("This trace has no per-layer NVTX ranges inside its inference stage. Capture with "
            "`--layer-ranges leaf` (one range per module) or `emit_nvtx` to get the layer table.")
    st.stop()

precision = (run.metadata or {}).get("layer_precision") or {}
table = layers.assign(
    gpu_ms=layers["gpu_ns"] / 1e6, share_pct=100 * layers["share"], tc_pct=100 * layers["tensor_core_share"],
    dominant=layers["dominant_kernel"].map(lambda n: common.short_kernel_name(n, 70) if n else ""),
    precision=layers["name"].map(lambda n: precision.get(n, "")))
busy = int((layers["gpu_ns"] > 0).sum())
st.caption(f"{len(layers)} layer positions per inference call ({busy} launch GPU work), over "
           f"{int(layers['instances'].max())} measured calls. Share = the layer's GPU time / all GPU time of the "
           "inference stage; Tensor Cores = share of its kernel time in Tensor-Core kernels.")

f1, f2, f3 = st.columns([3, 3, 2])
text = f1.text_input("Filter by name", key="layers_filter", placeholder="e.g. conv, linear, layer3")
ops = sorted(table["op"].astype(str).unique())
chosen_ops = f2.multiselect("Operation", ops, key="layers_ops") if 1 < len(ops) <= 200 else []
only_busy = f3.checkbox("Only layers with GPU work", value=True, key="layers_busy")
shown = table
if text:
    shown = shown[shown["name"].str.contains(text, case=False, regex=False)]
if chosen_ops:
    shown = shown[shown["op"].astype(str).isin(chosen_ops)]
if only_busy:
    shown = shown[shown["gpu_ns"] > 0]

columns = ["layer", "name", "gpu_ms", "share_pct", "tc_pct", "kernels"]
if precision:
    columns.append("precision")
if "tensor_active_pct" in shown.columns and shown["tensor_active_pct"].notna().any():
    columns.append("tensor_active_pct")
columns.append("dominant")
st.dataframe(
    shown[columns], hide_index=True, width="stretch", height=min(420, 40 + 35 * max(len(shown), 1)),
    column_config={
        "layer": st.column_config.NumberColumn("#", help="position within each inference call", width="small"),
        "name": st.column_config.TextColumn("layer", width="medium"),
        "gpu_ms": st.column_config.NumberColumn("GPU time (ms)", format="%.3f", help="summed over measured calls"),
        "share_pct": st.column_config.ProgressColumn("share of inference", format="%.1f%%", min_value=0,
                                                     max_value=max(1.0, float(table["share_pct"].max()))),
        "kernels": st.column_config.NumberColumn("kernels / call", format="%.1f"),
        "tc_pct": st.column_config.NumberColumn("Tensor Cores", format="%.0f%%"),
        "dominant": st.column_config.TextColumn("dominant kernel", width="large",
                                                help="the kernel with the most GPU time in this layer"),
        "precision": st.column_config.TextColumn("precision", help="recorded by the harness (modules.json / "
                                                 "TensorRT layer info)"),
        "tensor_active_pct": st.column_config.NumberColumn("Tensor Active", format="%.0f%%",
                                                           help="measured GPU metric averaged over the layer's "
                                                                "ranges (NaN: ranges shorter than a sample)"),
    })
if not precision:
    st.caption(f"Per-layer precision was not recorded for this run; the run's precision is "
               f"{(run.metadata or {}).get('precision') or 'unknown'}.")

st.subheader("Top layers by GPU time")
st.plotly_chart(charts.layers_bar_figure(shown, 15), width="stretch", key="layers_bar")

st.subheader("Drill down into a layer")
candidates = shown[shown["gpu_ns"] > 0].sort_values("gpu_ns", ascending=False)
if candidates.empty:
    st.info("No layer in the filtered table launched GPU work.")
    st.stop()
labels = {int(r.layer): f"#{int(r.layer)} {common.shorten(r.name, 70)} — {r.gpu_ms:.3f} ms"
          for r in candidates.itertuples()}
pick = st.selectbox("Layer", list(labels), format_func=labels.get, key="layers_pick")
lr = common.load_layer_ranges(run)
ks = kernels_of_layer(lr, a.projected, a.pairs, pick)
tc_by_name = a.kernel_summary.set_index("name")["tensor_core"] if len(a.kernel_summary) else pd.Series(dtype=bool)
row = candidates[candidates["layer"] == pick].iloc[0]
info, jump = st.columns([4, 1], vertical_alignment="center")
info.markdown(f"**{common.shorten(row['name'], 120)}** — {row['gpu_ms']:.3f} ms over {int(row['instances'])} calls · "
              f"{row['share_pct']:.1f}% of inference · Tensor Cores {row['tc_pct']:.0f}%")
inst = lr[lr["layer"] == pick].sort_values("start")
if len(inst):
    first = inst.iloc[0]
    pad = max(int(first["duration_ns"]) // 4, 2_000)
    with jump:
        common.timeline_button("First call in the timeline", int(first["start"]) - pad, int(first["end"]) + pad,
                               key="layer_to_timeline")
st.plotly_chart(charts.layer_kernels_figure(ks, tc_by_name), width="stretch", key="layer_kernels")
st.dataframe(ks.assign(kernel=ks["name"].map(lambda n: common.short_kernel_name(n, 100)),
                       total_ms=ks["total_ns"] / 1e6)[["kernel", "kind", "count", "total_ms"]],
             hide_index=True, width="stretch",
             column_config={"total_ms": st.column_config.NumberColumn("GPU time (ms)", format="%.3f")})
