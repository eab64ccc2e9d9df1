"""Every Plotly figure of the dashboard: pure functions, frames in, figures out (no Streamlit calls).

Times arrive in ns (as profiler/ computes them) and are drawn in ms unless a name says otherwise. Colours are
fixed per meaning (stage, kind of GPU operation) so the same thing looks the same on every page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from common import fmt_bytes, fmt_ns, fmt_pct, short_kernel_name, shorten

STAGE_COLORS = {"preprocess": "#F2A541", "inference": "#3B7DD8", "postprocess": "#59A14F", "other": "#BAB0AC"}
CATEGORY_COLORS = {
    "Kernel · Tensor Cores": "#2E7D32", "Kernel": "#4E79A7", "Memcpy HtoD": "#E15759", "Memcpy DtoH": "#B07AA1",
    "Memcpy other": "#F28E2B", "Memset": "#9C755F", "Iteration": "#A0A0A0", "Preprocess": STAGE_COLORS["preprocess"],
    "Inference": STAGE_COLORS["inference"], "Postprocess": STAGE_COLORS["postprocess"], "NVTX range": "#76B7B2",
}
TC_COLORS = {True: "#2E7D32", False: "#9E9E9E"}
FONT = dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13)


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=45), font=FONT, template="plotly_white",
                      hoverlabel=dict(font_size=12, align="left"), **kw)
    return fig


def _wrap(text: str, width: int = 90, lines: int = 3) -> str:
    """Hover text: long names broken over at most `lines` lines of `width` characters."""
    text = str(text)
    parts = [text[i:i + width] for i in range(0, min(len(text), width * lines), width)]
    if len(text) > width * lines:
        parts[-1] = parts[-1][:-1] + "…"
    return "<br>".join(parts)


def empty_figure(message: str, height: int = 160) -> go.Figure:
    """A blank figure that says why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color="#666"), x=0.5, y=0.5,
                       xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height)


# ---- Overview ------------------------------------------------------------------------------------------------
MAX_ITERATION_BARS = 300


def stage_share_figure(stages: pd.DataFrame, per_iteration: pd.DataFrame) -> go.Figure:
    """Share of iteration wall time per stage: all iterations together (left) and each iteration (right).

    `stages` is Analysis.stages (name, share 0..1, total_ns); `per_iteration` is Analysis.per_iteration
    (iteration, one ns column per stage, other, total). Over MAX_ITERATION_BARS iterations the right part is a
    stacked area (x = iteration index) instead of bars.
    """
    if stages.empty:
        return empty_figure("No preprocess / inference / postprocess ranges in this trace")
    fig = make_subplots(rows=1, cols=2, column_widths=[0.16, 0.84], shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("All iterations", "Per iteration"))
    names = list(stages["name"])
    for _, row in stages.iterrows():
        fig.add_trace(go.Bar(
            x=["all"], y=[100 * row["share"]], name=row["name"], marker_color=STAGE_COLORS.get(row["name"], "#888"),
            legendgroup=row["name"], text=[f"{100 * row['share']:.0f}%"] if row["share"] >= 0.04 else None,
            textposition="inside", insidetextanchor="middle",
            hovertemplate=f"{row['name']}: %{{y:.1f}}% of iteration time<br>total {fmt_ns(row['total_ns'])}"
                          "<extra></extra>"), row=1, col=1)
    many = len(per_iteration) > MAX_ITERATION_BARS  # thousands of SVG bars make the browser crawl: draw areas
    if len(per_iteration):
        total = per_iteration["total"].replace(0, np.nan)
        its = per_iteration["iteration"].astype(str)
        for name in names:
            if name not in per_iteration.columns:
                continue
            ms = per_iteration[name] / 1e6
            hover = f"iteration %{{x}}<br>{name}: %{{y:.1f}}% (%{{customdata:.2f}} ms)<extra></extra>"
            color = STAGE_COLORS.get(name, "#888")
            if many:
                trace = go.Scatter(x=np.arange(len(its)), y=100 * per_iteration[name] / total, name=name,
                                   legendgroup=name, showlegend=False, stackgroup="iterations", mode="lines",
                                   line=dict(width=0, color=color), fillcolor=color, customdata=ms,
                                   hovertemplate=hover)
            else:
                trace = go.Bar(x=its, y=100 * per_iteration[name] / total, name=name, legendgroup=name,
                               showlegend=False, marker_color=color, customdata=ms, hovertemplate=hover)
            fig.add_trace(trace, row=1, col=2)
    fig.update_layout(barmode="stack", legend=dict(orientation="h", y=-0.12, x=0), bargap=0.25)
    fig.update_yaxes(title_text="% of iteration wall time", range=[0, 100], row=1, col=1)
    fig.update_xaxes(title_text="iteration", type="linear" if many else "category", row=1, col=2)
    return _layout(fig, 340)


def top_kernels_figure(kernel_summary: pd.DataFrame, n: int = 10) -> go.Figure:
    """The `n` kernels with the most total GPU time (Analysis.kernel_summary), green when Tensor-Core."""
    if kernel_summary.empty:
        return empty_figure("No kernels in this trace")
    top = kernel_summary.head(n).iloc[::-1]
    labels = [f"{i + 1}. {short_kernel_name(nm, 72)}" for i, nm in zip(range(len(top) - 1, -1, -1), top["name"])]
    fig = go.Figure(go.Bar(
        x=top["total_ns"] / 1e6, y=labels, orientation="h",
        marker_color=[TC_COLORS[bool(t)] for t in top["tensor_core"]],
        customdata=np.stack([top["instances"], top["time_pct"], top["med_ns"] / 1e3,
                             [_wrap(nm) for nm in top["name"]],
                             ["Tensor Cores" if t else "CUDA cores" for t in top["tensor_core"]]], axis=1),
        hovertemplate="%{customdata[3]}<br>%{x:.3f} ms total · %{customdata[0]} launches · median "
                      "%{customdata[2]:.1f} µs<br>%{customdata[1]:.1f}% of kernel time · %{customdata[4]}"
                      "<extra></extra>"))
    fig.update_xaxes(title_text="total GPU time (ms)")
    fig.update_yaxes(automargin=True, tickfont=dict(family="monospace", size=11))
    return _layout(fig, 95 + 30 * len(top), showlegend=False)


# ---- Timeline ------------------------------------------------------------------------------------------------
LANE_PX = 30  # height of one lane (px); bars are 60% of it


def timeline_figure(view) -> go.Figure:
    """Lanes (rows) and segments (bars) of a profiler.analysis.timeline.TimelineView, WebGL-drawn.

    x is ms since the trace's first event. Each segment is a thick line from start to end (at least ~1 px
    wide so short kernels stay visible); hover on a segment's middle shows name, duration and bytes.
    """
    seg, lanes = view.segments, view.lanes
    if lanes.empty:
        return empty_figure("Nothing to draw: the trace has no GPU operations or NVTX ranges")
    t0 = view.t0
    w0, w1 = (view.window[0] - t0) / 1e6, (view.window[1] - t0) / 1e6
    min_w = (w1 - w0) / 1500
    n = len(lanes)
    fig = go.Figure()
    for cat in CATEGORY_COLORS:
        s = seg[seg["category"] == cat]
        if s.empty:
            continue
        x0 = (s["start"].to_numpy() - t0) / 1e6
        x1 = np.maximum((s["end"].to_numpy() - t0) / 1e6, x0 + min_w)
        y = (n - 1 - s["lane"].to_numpy()).astype(float)  # first lane on top (no reversed axis: WebGL lines)
        xs = np.column_stack([x0, x1, np.full(len(s), np.nan)]).ravel()
        ys = np.column_stack([y, y, np.full(len(s), np.nan)]).ravel()
        color = CATEGORY_COLORS[cat]
        fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", line=dict(color=color, width=LANE_PX * 0.62),
                                   name=cat, legendgroup=cat, hoverinfo="skip", connectgaps=False))
        fig.add_trace(go.Scattergl(x=(x0 + x1) / 2, y=y, mode="markers", legendgroup=cat, showlegend=False,
                                   marker=dict(size=LANE_PX * 0.6, color=color, opacity=0),
                                   hovertext=_segment_hover(s), hoverinfo="text", name=cat,
                                   hoverlabel=dict(bgcolor="white", bordercolor=color, font_color="#222")))
    fig.update_yaxes(tickvals=[n - 1 - k for k in range(n)], ticktext=list(lanes["label"]), range=[-0.5, n - 0.5],
                     showgrid=False, zeroline=False, automargin=True)
    fig.update_xaxes(title_text="time since trace start (ms)", range=[w0, w1], showgrid=True, zeroline=False,
                     exponentformat="none", separatethousands=True)  # 120,000 ms rather than 120k
    fig.update_layout(legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, font_size=12),
                      hovermode="closest", hoverdistance=-1, dragmode="select", selectdirection="h")
    _layout(fig, 150 + LANE_PX * n)
    fig.update_layout(margin=dict(l=10, r=10, t=80, b=50))  # room for a two-row legend above the lanes
    return fig


def _segment_hover(s: pd.DataFrame) -> list[str]:
    """Hover text per segment: readable name (templates folded, ≤ 100 characters), kind, duration, bytes."""
    short = {n: short_kernel_name(n, 100) for n in pd.unique(s["name"])}  # few distinct names: fold each once
    out = []
    for name, cat, dur, busy, count, nbytes in zip(s["name"], s["category"], s["duration_ns"], s["busy_ns"],
                                                   s["count"], s["bytes"]):
        b = f" · {fmt_bytes(nbytes)}" if nbytes == nbytes else ""  # NaN for kernels and ranges
        if count > 1:
            out.append(f"<b>{count:,} merged</b> · {cat} · busy {fmt_ns(busy)} of {fmt_ns(dur)}{b}"
                       f"<br>longest: {short[name]}")
        else:
            out.append(f"<b>{short[name]}</b><br>{cat} · {fmt_ns(dur)}{b}")
    return out


# ---- Layers --------------------------------------------------------------------------------------------------
def layers_bar_figure(layers: pd.DataFrame, n: int = 15) -> go.Figure:
    """The `n` layers with the most GPU time (Analysis.layers), coloured by Tensor-Core share of kernel time."""
    busy = layers[layers["gpu_ns"] > 0] if len(layers) else layers
    if busy.empty:
        return empty_figure("No layer launched GPU work")
    top = busy.sort_values("gpu_ns", ascending=False).head(n).iloc[::-1]
    labels = [f"#{int(k)} {shorten(nm, 48)}" for k, nm in zip(top["layer"], top["name"])]
    fig = go.Figure(go.Bar(
        x=top["gpu_ns"] / 1e6, y=labels, orientation="h",
        marker=dict(color=100 * top["tensor_core_share"], colorscale=[[0, "#BDBDBD"], [1, "#2E7D32"]], cmin=0,
                    cmax=100, colorbar=dict(title="Tensor<br>Core %", thickness=12)),
        customdata=np.stack([100 * top["share"], 100 * top["tensor_core_share"], top["kernels"],
                             [_wrap(nm, 80, 2) for nm in top["name"]],
                             [short_kernel_name(k, 70) for k in top["dominant_kernel"]]], axis=1),
        hovertemplate="%{customdata[3]}<br>%{x:.3f} ms GPU · %{customdata[0]:.1f}% of inference<br>"
                      "Tensor Cores %{customdata[1]:.0f}% · %{customdata[2]} kernels per call<br>"
                      "dominant: %{customdata[4]}<extra></extra>"))
    fig.update_xaxes(title_text="GPU time over all measured iterations (ms)")
    fig.update_yaxes(automargin=True, tickfont=dict(family="monospace", size=11))
    return _layout(fig, 100 + 26 * len(top), showlegend=False)


def layer_kernels_figure(kernels: pd.DataFrame, tensor_core: pd.Series | None = None) -> go.Figure:
    """Drill-down: GPU operations of one layer (layers.kernels_of_layer: name, kind, count, total_ns)."""
    if kernels.empty:
        return empty_figure("This layer launched no GPU work", 120)
    k = kernels.head(12).iloc[::-1]
    colors = ["#2E7D32" if (tensor_core is not None and bool(tensor_core.get(nm, False))) else
              ("#4E79A7" if kind == "kernel" else "#E15759") for nm, kind in zip(k["name"], k["kind"])]
    labels = [f"{len(k) - i}. {short_kernel_name(n, 64)}" for i, n in enumerate(k["name"])]  # unique, ranked
    fig = go.Figure(go.Bar(x=k["total_ns"] / 1e6, y=labels, orientation="h",
                           marker_color=colors, customdata=np.stack([k["count"], [_wrap(n) for n in k["name"]]], axis=1),
                           hovertemplate="%{customdata[1]}<br>%{x:.3f} ms · %{customdata[0]} launches<extra></extra>"))
    fig.update_xaxes(title_text="GPU time (ms)")
    fig.update_yaxes(automargin=True, tickfont=dict(family="monospace", size=11))
    return _layout(fig, 95 + 28 * len(k), showlegend=False)


# ---- Tensor Cores --------------------------------------------------------------------------------------------
def tensor_core_split_figure(split: dict) -> go.Figure:
    """Donut of the inference stage's GPU time: Tensor-Core kernels, other kernels, copies and memsets (ns)."""
    if not split.get("gpu_ns"):
        return empty_figure("No GPU work inside the inference stage")
    parts = {"Tensor-Core kernels": split["tensor_core_ns"],
             "Other kernels (CUDA cores)": split["kernel_ns"] - split["tensor_core_ns"],
             "Copies and memsets": split["memory_ns"]}
    fig = go.Figure(go.Pie(labels=list(parts), values=[v / 1e6 for v in parts.values()], hole=0.62, sort=False,
                           marker_colors=["#2E7D32", "#9E9E9E", "#E15759"], textinfo="percent",
                           hovertemplate="%{label}: %{value:.3f} ms (%{percent})<extra></extra>"))
    fig.add_annotation(text=f"<b>{fmt_pct(split['tensor_core_ns'] / split['gpu_ns'], 0)}</b><br>Tensor<br>Cores",
                       showarrow=False, font=dict(size=15))
    fig.update_layout(legend=dict(orientation="h", y=-0.05))
    return _layout(fig, 330)


def missing_tensor_cores_figure(missing: pd.DataFrame, n: int = 15) -> go.Figure:
    """Layers whose kernels mostly run on CUDA cores, biggest GPU time first (tensor_cores.
    layers_missing_tensor_cores)."""
    if missing.empty:
        return empty_figure("Every layer with GPU work runs mostly on Tensor Cores")
    top = missing.head(n).iloc[::-1]
    labels = [f"#{int(k)} {shorten(nm, 48)}" for k, nm in zip(top["layer"], top["name"])]
    fig = go.Figure(go.Bar(
        x=top["gpu_ns"] / 1e6, y=labels, orientation="h", marker_color="#E15759",
        customdata=np.stack([100 * top["share"], 100 * top["tensor_core_share"],
                             [short_kernel_name(k, 70) for k in top["dominant_kernel"]]], axis=1),
        hovertemplate="%{y}<br>%{x:.3f} ms · %{customdata[0]:.1f}% of inference<br>Tensor Cores "
                      "%{customdata[1]:.0f}% · dominant: %{customdata[2]}<extra></extra>"))
    fig.update_xaxes(title_text="GPU time (ms)")
    fig.update_yaxes(automargin=True, tickfont=dict(family="monospace", size=11))
    return _layout(fig, 100 + 26 * len(top), showlegend=False)


def tensor_active_figure(series: pd.DataFrame, bands: pd.DataFrame | None = None) -> go.Figure:
    """Measured 'Tensor Active [Throughput %]' over time (timeline.binned_series: time_ms, mean, min, max),
    with optional shaded stage windows (`bands`: x0_ms, x1_ms, stage)."""
    if series.empty:
        return empty_figure("This trace has no GPU metrics (capture with --gpu-metrics-devices)")
    fig = go.Figure()
    if bands is not None and len(bands):
        fig.update_layout(shapes=[  # one layout update: add_vrect per band is quadratic in plotly.py
            dict(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, line_width=0, layer="below",
                 fillcolor=STAGE_COLORS.get(stage, "#ccc"), opacity=0.12)
            for x0, x1, stage in zip(bands["x0_ms"], bands["x1_ms"], bands["stage"])])
        for stage in bands["stage"].unique():  # legend entries for the shading
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{stage} stage",
                                     marker=dict(size=12, symbol="square", color=STAGE_COLORS.get(stage, "#ccc"),
                                                 opacity=0.4)))
    if (series["max"] != series["min"]).any():
        fig.add_trace(go.Scatter(x=np.r_[series["time_ms"], series["time_ms"][::-1]],
                                 y=np.r_[series["max"], series["min"][::-1]], fill="toself", mode="none",
                                 fillcolor="rgba(46,125,50,0.18)", name="min–max per bin", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=series["time_ms"], y=series["mean"], mode="lines", name="Tensor Active",
                             line=dict(color="#2E7D32", width=1.6),
                             hovertemplate="%{x:.2f} ms: %{y:.1f}%<extra></extra>"))
    fig.update_xaxes(title_text="time since trace start (ms)")
    fig.update_yaxes(title_text="Tensor Active (%)", rangemode="tozero")
    fig.update_layout(legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return _layout(fig, 320)


# ---- roofline (issue 5) -------------------------------------------------------------------------------------
ROOF_COLORS = {"tensor core": "#2E7D32", "CUDA core": "#4E79A7", "memory": "#E15759"}
BOUND_SYMBOLS = {"compute": "circle", "memory": "diamond"}


def roofline_figure(points: pd.DataFrame, lines: pd.DataFrame, ceilings: dict | None = None,
                    title: str = "", height: int = 520) -> go.Figure:
    """Log-log roofline: x = arithmetic intensity (FLOP/B), y = FLOP/s drawn in TFLOP/s.

    points: `profiler.analysis.roofline.roofline_points` rows (intensity, achieved_flops_per_s, time_ns, roof,
    bound, fraction_of_roof, name, op_types); rows without both are skipped. Marker colour = the roof the layer
    is held to (Tensor-Core / CUDA-core), symbol = bound, size ~ time per instance.
    lines: `roof_lines` frame (intensity, memory, tensor_core, cuda_core in FLOP/s): the memory roof, the
    Tensor-Core roof and the CUDA-core roof are separate lines.
    """
    fig = go.Figure()
    bw = (ceilings or {}).get("memory_bytes_per_s")
    mem_label = f"Memory roof ({bw / 1e12:.2f} TB/s)" if bw else "Memory roof"
    for col, key, label in (("tensor_core", "tensor_core_flops", "Tensor-Core roof"),
                            ("cuda_core", "cuda_core_flops", "CUDA-core roof")):
        if col not in lines or lines[col].isna().all():
            continue
        peak = (ceilings or {}).get(key)
        name = f"{label} ({peak / 1e12:.0f} TFLOP/s)" if peak else label
        color = ROOF_COLORS["tensor core" if col == "tensor_core" else "CUDA core"]
        fig.add_trace(go.Scatter(x=lines["intensity"], y=lines[col] / 1e12, mode="lines", name=name,
                                 line=dict(color=color, width=2.5), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=lines["intensity"], y=lines["memory"] / 1e12, mode="lines", name=mem_label,
                             line=dict(color=ROOF_COLORS["memory"], dash="dot", width=2), hoverinfo="skip"))
    placed = points[(points["intensity"] > 0) & (points["achieved_flops_per_s"] > 0)] if len(points) else points
    for (roof, bound), grp in placed.groupby(["roof", "bound"], sort=True) if len(placed) else []:
        size = np.clip(6 + 4 * np.log10(grp["time_ns"].clip(lower=1) / 1e3).clip(lower=0), 6, 22)
        hover = [
            f"<b>{_wrap(r['name'], 70, 2)}</b><br>op: {r.get('op_types') or '—'}<br>time: {fmt_ns(r['time_ns'])} per call"
            f"<br>achieved: {r['achieved_flops_per_s'] / 1e12:.2f} TFLOP/s<br>intensity: {r['intensity']:.1f} FLOP/B"
            f"<br>bound: {bound} ({roof} roof)<br>fraction of roof: {fmt_pct(r['fraction_of_roof'])}"
            for _, r in grp.iterrows()]
        fig.add_trace(go.Scatter(
            x=grp["intensity"], y=grp["achieved_flops_per_s"] / 1e12, mode="markers",
            name=f"{bound}-bound layers · {roof} roof",
            marker=dict(color=ROOF_COLORS.get(roof, "#888"), symbol=BOUND_SYMBOLS.get(bound, "circle"), size=size,
                        opacity=0.75, line=dict(width=0.5, color="white")),
            hovertext=hover, hoverinfo="text"))
    fig.update_xaxes(type="log", title="Arithmetic intensity (FLOP/byte)")
    fig.update_yaxes(type="log", title="Performance (TFLOP/s)")
    return _layout(fig, height, title=title or None,
                   legend=dict(orientation="h", yanchor="top", y=-0.15, xanchor="left", x=0))


def predicted_times_figure(predicted: pd.DataFrame, n: int = 20) -> go.Figure:
    """Horizontal bars: the n nodes with the largest predicted time (`predict_layer_times`: predicted_ns,
    name, op_type, bound), drawn in µs, coloured by bound."""
    top = predicted.dropna(subset=["predicted_ns"]).nlargest(n, "predicted_ns").iloc[::-1]
    if top.empty:
        return empty_figure("No node has a predicted time.")
    colors = {"compute": ROOF_COLORS["tensor core"], "memory": ROOF_COLORS["memory"]}
    fig = go.Figure(go.Bar(
        x=top["predicted_ns"] / 1e3, y=[shorten(f"{n} ({o})", 55) for n, o in zip(top["name"], top["op_type"])],
        orientation="h", marker_color=[colors.get(b, "#9E9E9E") for b in top["bound"]],
        hovertext=[f"<b>{_wrap(r['name'], 70, 2)}</b><br>{r['op_type']}: {r['predicted_ns'] / 1e3:.2f} µs "
                   f"({r['bound']}-bound, {r['roof']} roof)" for _, r in top.iterrows()],
        hoverinfo="text"))
    fig.update_xaxes(title="Predicted time at the roof (µs)")
    return _layout(fig, max(220, 22 * len(top) + 80), title=f"Largest predicted times (top {len(top)})")
