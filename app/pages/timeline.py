"""Timeline: one lane per CUDA stream (kernels, copies, memsets) and per NVTX level (iterations, stages, layers).

Lays out profiler.analysis.timeline: the browser never receives more than SHAPE_BUDGET shapes; when a window
holds more events, crowded lanes are merged into busy blocks and the page says so. Other pages open a window
here with st.session_state["timeline_window"] = (start_ns, end_ns) + st.switch_page("pages/timeline.py").
"""

from __future__ import annotations

import streamlit as st

import charts
import common
from profiler.analysis.timeline import SHAPE_BUDGET, iteration_window, timeline_view

MODES = ["Whole trace", "One iteration", "Window"]
# A lane is ~1,300 px wide on a laptop screen: more than ~3 shapes per pixel cannot be told apart, only slow the
# browser down. So each lane gets at most SHAPES_PER_LANE shapes, and the whole chart at most SHAPE_BUDGET.
SHAPES_PER_LANE = 4_000

run = common.require_run()
trace = common.load_trace(run)
st.title("Timeline")

nvtx = trace.nvtx
deepest = int(nvtx["depth"].max()) if len(nvtx) else 0
top = st.columns([3, 3, 2])
levels = top[2].slider("NVTX levels shown", 1, deepest + 1, min(4, deepest + 1), key="tl_levels",
                       help="Level 1: iterations; 2: stages; 3: layers; deeper: ops inside layers.",
                       disabled=deepest == 0) if deepest > 0 else 1
src = common.load_timeline_source(run, levels - 1)
span_ms = (src.t1 - src.t0) / 1e6

# A window requested by another page (or by a box selection below) applies before the widgets are drawn.
pending = st.session_state.pop(common.WINDOW_KEY, None)
if pending is not None:
    st.session_state["tl_mode"] = "Window"
    st.session_state["tl_start_ms"] = max(0.0, (pending[0] - src.t0) / 1e6)
    st.session_state["tl_end_ms"] = max(st.session_state["tl_start_ms"] + 1e-3, (pending[1] - src.t0) / 1e6)

if st.session_state.pop("tl_reset", False):
    st.session_state["tl_mode"] = "Whole trace"
modes = MODES if len(src.iterations) else [m for m in MODES if m != "One iteration"]
if st.session_state.get("tl_mode") not in modes:
    st.session_state["tl_mode"] = modes[0]
mode = top[0].radio("Show", modes, horizontal=True, key="tl_mode")
window = None
if mode == "One iteration":
    it = top[1].selectbox("Iteration", list(src.iterations["text"]), key="tl_iteration")
    window = iteration_window(src, it)
elif mode == "Window":
    st.session_state.setdefault("tl_start_ms", 0.0)
    st.session_state.setdefault("tl_end_ms", span_ms)
    a, b = top[1].columns(2)
    start_ms = a.number_input("From (ms)", min_value=0.0, max_value=max(span_ms, 0.001), step=0.1, format="%.3f",
                              key="tl_start_ms")
    end_ms = b.number_input("To (ms)", min_value=0.0, max_value=max(span_ms, 0.001) * 1.01, step=0.1,
                            format="%.3f", key="tl_end_ms")
    if end_ms <= start_ms:
        st.warning("The window ends before it starts; showing 1 ms from its start.")
        end_ms = start_ms + 1.0
    window = (src.t0 + int(start_ms * 1e6), src.t0 + int(end_ms * 1e6))

budget = min(SHAPE_BUDGET, SHAPES_PER_LANE * max(1, len(src.lanes)))
view = timeline_view(src, window, budget)
if view.merged:
    st.info(view.note, icon=":material/compress:")
else:
    st.caption(f"{len(view.segments):,} GPU operations and NVTX ranges in this window, each drawn "
               f"(budget {budget:,} shapes). Window {common.fmt_ns(view.window[1] - view.window[0])}.")

fig = charts.timeline_figure(view)
event = st.plotly_chart(fig, width="stretch", on_select="rerun", selection_mode="box",
                        key=f"tl_chart_{view.window[0]}_{view.window[1]}_{levels}",
                        config={"displaylogo": False, "scrollZoom": False})
st.caption("Drag across the chart to open that window at full detail; double-click resets the zoom of the "
           "drawn data. Hover a bar's middle for its name, duration and bytes.")
boxes = (event or {}).get("selection", {}).get("box", []) if event else []
if boxes:
    x0, x1 = sorted(boxes[0]["x"][:2])
    st.session_state[common.WINDOW_KEY] = (src.t0 + int(x0 * 1e6), src.t0 + int(x1 * 1e6))
    st.rerun()

if mode != "Whole trace" and st.button("Back to the whole trace", icon=":material/zoom_out_map:"):
    st.session_state.pop("tl_start_ms", None)
    st.session_state.pop("tl_end_ms", None)
    st.session_state["tl_reset"] = True
    st.rerun()

with st.expander("Lanes"):
    st.dataframe(view.lanes[["label", "group", "items", "in_window", "drawn"]], hide_index=True, width="stretch",
                 column_config={"items": "events in trace", "in_window": "events in window",
                                "drawn": "shapes drawn"})
with st.expander("Longest GPU operations in this window"):
    gpu_lanes = set(view.lanes.loc[view.lanes["group"] == "gpu", "lane"])
    seg = view.segments[view.segments["lane"].isin(gpu_lanes)].nlargest(15, "busy_ns")
    st.dataframe(seg.assign(name=seg["name"].map(lambda n: common.short_kernel_name(n, 90)),
                            start_ms=(seg["start"] - view.t0) / 1e6, busy_us=seg["busy_ns"] / 1e3)[
        ["name", "category", "start_ms", "busy_us", "count", "bytes"]], hide_index=True, width="stretch",
        column_config={"start_ms": st.column_config.NumberColumn("start (ms)", format="%.3f"),
                       "busy_us": st.column_config.NumberColumn("GPU time (µs)", format="%.1f"),
                       "count": "events"})
