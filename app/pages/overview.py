"""Overview: what ran (device, precision, batch, latency), where iteration time goes, top kernels, findings."""

from __future__ import annotations

import streamlit as st

import charts
import common
from profiler.analysis.stages import dominant_stage_sentence

run = common.require_run()
a = common.load_analysis(run)
facts = common.run_facts(run, a)

st.title(run.name)
about = [f"{run.source} run", str(facts["model"])]
if facts["backend"] != "—":
    about.append(f"backend {facts['backend']}")
about.append(f"added {run.created[:16].replace('T', ' ')}")
st.caption(" · ".join(about))

cols = st.columns([3, 2, 1, 3])
cols[0].metric("Device", str(facts["device"]).removeprefix("NVIDIA "), help=str(facts["device"]))
cols[1].metric("Precision", str(facts["precision"]))
cols[2].metric("Batch", str(facts["batch"]))
lat = common.latency_rows(run, a)
total = lat[lat["stage"] == "total"] if len(lat) else lat
if len(total) and total.iloc[0]["median ms"] is not None and total.iloc[0]["median ms"] == total.iloc[0]["median ms"]:
    cols[3].metric("Latency per iteration (median)", f"{total.iloc[0]['median ms']:.2f} ms",
                   help="Measured without the profiler attached (metadata.json); p90 and per-stage numbers below.")
elif len(total) and total.iloc[0]["profiled median ms"] is not None:
    cols[3].metric("Iteration time (median, profiled)", f"{total.iloc[0]['profiled median ms']:.2f} ms",
                   help="From the trace's iteration ranges, with the profiler attached.")
else:
    cols[3].metric("Latency", "—", help="No iteration ranges and no harness measurements for this run.")

if a.trace.warnings:
    with st.expander(f"Notes about this export ({len(a.trace.warnings)})", icon=":material/info:"):
        for w in a.trace.warnings:
            st.caption(w)

st.subheader("Where iteration time goes")
st.markdown(f"**{dominant_stage_sentence(a.stages)}**")
st.plotly_chart(charts.stage_share_figure(a.stages, a.per_iteration), width="stretch", key="stage_share")
if len(lat):
    with st.expander("Latency per stage (ms)"):
        st.dataframe(lat, hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.3f") for c in lat.columns if c != "stage"})

st.subheader("Findings from the other pages")
for sentence, page in common.headline_findings(a, common.load_copy_findings(run)):
    text, link = st.columns([6, 1], vertical_alignment="center")
    text.markdown(f"- {sentence}")
    link.page_link(page, label="Details", icon=":material/arrow_forward:")

st.subheader("Top kernels")
st.caption("Total GPU time over the whole trace; green: Tensor-Core kernels. Hover a bar for the full name.")
st.plotly_chart(charts.top_kernels_figure(a.kernel_summary, 10), width="stretch", key="top_kernels")
with st.expander("Kernel table"):
    ks = a.kernel_summary
    st.dataframe(
        ks.assign(kernel=ks["name"].map(lambda n: common.short_kernel_name(n, 90)), total_ms=ks["total_ns"] / 1e6,
                  med_us=ks["med_ns"] / 1e3)[["kernel", "instances", "total_ms", "med_us", "time_pct", "tensor_core"]],
        hide_index=True, width="stretch",
        column_config={"total_ms": st.column_config.NumberColumn("total (ms)", format="%.3f"),
                       "med_us": st.column_config.NumberColumn("median (µs)", format="%.1f"),
                       "time_pct": st.column_config.ProgressColumn("% of kernel time", format="%.1f%%", min_value=0,
                                                                   max_value=100),
                       "tensor_core": st.column_config.CheckboxColumn("Tensor Cores")})
