"""Tensor Cores: how much of the inference stage's GPU time runs in Tensor-Core kernels, which layers miss
them (biggest first), and the measured 'Tensor Active' GPU metric over time where the trace sampled it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import charts
import common
from profiler.analysis.stages import stage_ranges
from profiler.analysis.tensor_cores import TENSOR_ACTIVE, layers_missing_tensor_cores
from profiler.analysis.timeline import binned_series

MAX_BANDS = 150  # shaded stage windows drawn under the metric (more would clutter and slow the chart)

run = common.require_run()
a = common.load_analysis(run)
st.title("Tensor Cores")
st.caption("A kernel counts as Tensor-Core work when its name marks MMA instructions (hmma/xmma/wgmma, cuBLAS/"
           "CUTLASS tile shapes, flash attention…; see profiler/analysis/kernels.py). The measured Tensor Active "
           "metric below checks that claim against the hardware counters.")

split = common.inference_gpu_split(a)
c = st.columns(3)
if split["gpu_ns"]:
    c[0].metric("Inference GPU time on Tensor Cores", common.fmt_pct(split["tensor_core_ns"] / split["gpu_ns"], 0),
                help=f"{common.fmt_ms(split['tensor_core_ns'])} of {common.fmt_ms(split['gpu_ns'])} launched in the "
                     f"inference stage ({split['instances']} calls)")
else:
    c[0].metric("Inference GPU time on Tensor Cores", "—", help="No inference stage ranges in this trace")
c[1].metric("All kernel time on Tensor Cores", common.fmt_pct(a.tensor_core_share, 0))
active = a.tensor_active.get("inference") if a.tensor_active else None
c[2].metric("Tensor Active during inference (measured)", f"{active:.1f}%" if active is not None else "—",
            help="Mean of the sampled GPU metric over the inference ranges: the share of cycles the tensor pipes "
                 "were busy, averaged over all SMs. Kernels 'on Tensor Cores' rarely keep them busy all the time, "
                 "so this is far below the share above. — when the capture sampled no GPU metrics.")

left, right = st.columns([2, 3])
with left:
    st.subheader("Inference GPU time")
    st.plotly_chart(charts.tensor_core_split_figure(split), width="stretch", key="tc_split")
with right:
    st.subheader("Layers that miss Tensor Cores")
    busy = a.layers[a.layers["gpu_ns"] > 0] if len(a.layers) else a.layers
    missing = layers_missing_tensor_cores(busy) if len(busy) else busy
    if len(busy):
        st.caption(f"{len(missing)} of {len(busy)} layers with GPU work spend under half of their kernel time in "
                   "Tensor-Core kernels; biggest GPU time first.")
        st.plotly_chart(charts.missing_tensor_cores_figure(missing, 15), width="stretch", key="tc_missing")
    else:
        st.info("No per-layer ranges in this trace, so no per-layer view.")

if len(missing):
    with st.expander("All layers that miss Tensor Cores"):
        st.dataframe(missing.assign(gpu_ms=missing["gpu_ns"] / 1e6, share_pct=100 * missing["share"],
                                    tc_pct=100 * missing["tensor_core_share"],
                                    dominant=missing["dominant_kernel"].map(lambda n: common.short_kernel_name(n, 80)))[
            ["layer", "name", "gpu_ms", "share_pct", "tc_pct", "dominant"]], hide_index=True, width="stretch",
            column_config={"gpu_ms": st.column_config.NumberColumn("GPU time (ms)", format="%.3f"),
                           "share_pct": st.column_config.NumberColumn("share of inference", format="%.1f%%"),
                           "tc_pct": st.column_config.NumberColumn("Tensor Cores", format="%.0f%%")})

st.subheader("Measured Tensor Active over time")
samples = a.trace.gpu_metric(TENSOR_ACTIVE)
if samples.empty:
    st.info("This trace has no GPU metrics samples: capture with `--gpu-metrics-devices=all` (our harness does when "
            "the GPU allows it) to see the measured Tensor Active signal.")
else:
    nvtx, ops = a.trace.nvtx, a.trace.gpu_ops
    # the Timeline's clock: 0 = first GPU operation or NVTX range; samples outside that span are left out
    t0 = int(min(ops["start"].min(), nvtx["start"].min() if len(nvtx) else ops["start"].min()))
    t1 = int(max(ops["end"].max(), nvtx["end"].max() if len(nvtx) else ops["end"].max()))
    series = binned_series(samples["timestamp"].to_numpy(), samples["value"].to_numpy(), t0, window=(t0, t1))
    st_r = stage_ranges(nvtx)
    st_r = st_r[st_r["depth"] == st_r["depth"].min()] if len(st_r) else st_r
    bands = pd.DataFrame({"x0_ms": (st_r["start"] - t0) / 1e6, "x1_ms": (st_r["end"] - t0) / 1e6,
                          "stage": st_r["text"].astype(str)}) if len(st_r) else None
    if bands is not None and len(bands) > MAX_BANDS:
        st.caption(f"{len(bands)} stage ranges: too many to shade; showing the metric alone.")
        bands = None
    st.plotly_chart(charts.tensor_active_figure(series, bands), width="stretch", key="tc_active")
    st.caption(f"{len(samples):,} samples at the capture's sampling rate"
               + (f", drawn as {len(series):,} time bins (mean, with min–max band)" if len(series) < len(samples)
                  else "") + ". Shaded: preprocess / inference / postprocess ranges.")
    if a.tensor_active:
        st.dataframe(pd.DataFrame({"stage": list(a.tensor_active), "active": list(a.tensor_active.values())}),
                     hide_index=True, column_config={"active": st.column_config.NumberColumn(
                         "mean Tensor Active (%)", format="%.2f")})
