"""Roofline: the selected run's layers under its GPU's roofs (Tensor-Core, CUDA-core and memory), a table of
where each layer sits, and a static analysis of an uploaded ONNX model on a GPU and precision of choice.

All numbers come from profiler/ (`run_roofline`, `onnx_node_costs`, `predict_layer_times`); this page lays out.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import streamlit as st

import charts
import common
from profiler.analysis.roofline import furthest_below_roof, predict_layer_times, roof_lines, roofline_ceilings, \
    run_roofline
from profiler.errors import ModelError
from profiler.model.gpu_specs import gpu_table, match_gpu
from profiler.model.onnx_cost import onnx_node_costs, onnx_totals

PRECISIONS = ["fp16", "bf16", "fp32", "tf32", "int8", "fp8"]

st.title("Roofline")
run_tab, onnx_tab = st.tabs(["Measured run", "Analyse an ONNX model"])


def _run_dir(run):
    """The harness folder of a bundled or captured run (where modules.json lives), or None."""
    for prefix, root in (("bundled-", common.samples_dir()), ("captured-", common.captured_dir())):
        if run.id.startswith(prefix):
            for name in (run.id[len(prefix):], run.name):
                if (root / name).is_dir():
                    return root / name
    return None


@st.cache_resource(max_entries=12, show_spinner="Placing the layers under the roofs…")
def _points(run_key: str, _run, _analysis, run_dir: str | None, precision: str | None, use_measured: bool):
    return run_roofline(_analysis, run_dir if run_dir else (_run.metadata or None), precision,
                        use_measured=use_measured)


def _layer_sentence(points: pd.DataFrame) -> str:
    worst = furthest_below_roof(points, 3)
    if worst.empty:
        return ""
    parts = [f"`{common.shorten(r['name'], 40)}` ({r['op_types'] or r.get('op', '')}, {r['bound']}-bound, "
             f"{common.fmt_pct(r['fraction_of_roof'])} of its {r['roof']} roof)" for _, r in worst.iterrows()]
    lost = furthest_below_roof(points, 3, by="excess_ns")
    lost_parts = [f"`{common.shorten(r['name'], 40)}` ({common.fmt_ns(r['excess_ns'])} per call)"
                  for _, r in lost.iterrows()]
    return ("Furthest below their roof: " + "; ".join(parts) + ". Most time lost against the roof: "
            + ", ".join(lost_parts) + ".")


# ---- the measured run --------------------------------------------------------------------------------------
with run_tab:
    run = common.current_run()
    if run is None:
        st.info("No run selected. Pick one in the sidebar, or upload an nsys export on the **Upload** page.")
    else:
        a = common.load_analysis(run)
        run_dir = _run_dir(run)
        use_measured = st.toggle(
            "Measured ceilings", value=False, key="roofline_measured",
            help="Roofs from a large cuBLAS GEMM and a large device-to-device copy measured on this GPU model "
                 "(data/gpu_specs.csv, `measured_how`) instead of the datasheet, where the table has them. "
                 "Layers whose data stays in L2 can sit above a measured DRAM roof.")
        points = _points(str(run), run, a, str(run_dir) if run_dir else None, None, use_measured)
        info = points.attrs
        gpu, ceilings = info.get("gpu"), info.get("ceilings")
        if use_measured and ceilings is not None and ceilings["source"] != "measured":
            st.caption(f"No measured ceilings for {gpu['gpu'] if gpu else 'this GPU'} in data/gpu_specs.csv: "
                       "datasheet roofs shown.")
        if gpu is None or ceilings is None:
            st.info(f"No roofs for this run: {info.get('note')}. The ONNX tab works for any GPU in the table.")
        elif not info.get("placed"):
            st.info(f"Nothing to place for this run: {info.get('note')}. Capture with the harness "
                    "(`python -m profiler run --layer-ranges leaf`, which writes modules.json) or with `emit_nvtx`.")
        else:
            st.caption(
                f"{gpu['gpu']} at {info['precision'].upper()} ({ceilings['source']} ceilings): Tensor-Core roof "
                f"{ceilings['tensor_core_flops'] / 1e12:.0f} TFLOP/s, CUDA-core roof "
                f"{ceilings['cuda_core_flops'] / 1e12:.0f} TFLOP/s, memory roof "
                f"{ceilings['memory_bytes_per_s'] / 1e12:.2f} TB/s (DRAM). Costs from {info['cost_source']}; "
                f"{info['placed']} of {len(points)} layers placed (time = mean GPU time per call). "
                "A layer is held to the Tensor-Core roof when its kernels used Tensor Cores.")
            st.markdown(_layer_sentence(points))
            lines = roof_lines(ceilings, x_min=0.05, x_max=2e3)
            st.plotly_chart(charts.roofline_figure(points, lines, ceilings), use_container_width=True,
                            key="roofline_run_chart")
            above = points[points["above_roof"]]
            if len(above):
                st.caption(f"{len(above)} layer(s) sit above the DRAM roof ("
                           + ", ".join(f"`{n}`" for n in above["name"].head(5))
                           + (", …" if len(above) > 5 else "") + "): small memory-bound layers whose input is still "
                           "in L2 (H100: 50 MB) can beat DRAM bandwidth; the chart has no L2 roof yet.")
            placed = points[points["fraction_of_roof"].notna()]
            table = pd.DataFrame({
                "layer": placed["name"], "op": placed["op_types"], "time µs": placed["time_ns"] / 1e3,
                "MFLOP": placed["flops"] / 1e6, "MB": placed["bytes"] / 1e6, "FLOP/B": placed["intensity"],
                "TFLOP/s": placed["achieved_flops_per_s"] / 1e12, "roof": placed["roof"], "bound": placed["bound"],
                "% of roof": 100 * placed["fraction_of_roof"]})
            st.dataframe(table.sort_values("% of roof"), hide_index=True, use_container_width=True,
                         height=min(360, 35 * len(table) + 38),
                         column_config={
                             "time µs": st.column_config.NumberColumn(format="%.1f"),
                             "MFLOP": st.column_config.NumberColumn(format="%.1f"),
                             "MB": st.column_config.NumberColumn(format="%.2f"),
                             "FLOP/B": st.column_config.NumberColumn(format="%.1f"),
                             "TFLOP/s": st.column_config.NumberColumn(format="%.2f"),
                             "% of roof": st.column_config.ProgressColumn(format="%.1f%%", min_value=0,
                                                                          max_value=100)})
            unplaced = points[points["fraction_of_roof"].isna()]
            if len(unplaced):
                st.caption(f"Not placed ({len(unplaced)}): "
                           + ", ".join(f"`{n}`" for n in unplaced["name"].head(8))
                           + (", …" if len(unplaced) > 8 else "")
                           + " — no GPU time, no FLOPs (views, dropout) or no cost formula.")


# ---- an uploaded ONNX model ---------------------------------------------------------------------------------
def _parse_shapes(text: str) -> dict:
    """'input: 1x3x224x224; mask: 1x128' -> {'input': [1, 3, 224, 224], 'mask': [1, 128]}."""
    out = {}
    for part in filter(None, (p.strip() for p in re.split(r"[;\n]", text or ""))):
        name, _, dims = part.rpartition(":")
        values = [int(v) for v in re.findall(r"\d+", dims)]
        if not name.strip() or not values:
            raise ModelError(f"input shape '{part}' is not 'name: 1x3x224x224'")
        out[name.strip()] = values
    return out


@st.cache_data(max_entries=8, show_spinner="Counting FLOPs and bytes per node…")
def _onnx_costs(digest: str, data: bytes, precision: str, shapes: tuple, max_bytes: int) -> pd.DataFrame:
    return onnx_node_costs(data, precision, input_shapes=dict(shapes) or None, max_bytes=max_bytes)


with onnx_tab:
    limit_mb = int(st.get_option("server.maxUploadSize"))
    st.caption("Static analysis, no GPU needed: FLOPs, bytes and parameters per node, Tensor-Core eligibility, "
               "findings, and the roofline's lower bound on each node's time on the chosen GPU.")
    upload = st.file_uploader(f"ONNX model (up to {limit_mb} MB)", type=["onnx"], key="roofline_onnx")
    table = gpu_table()
    names = table["gpu"].tolist()
    run = common.current_run()
    device = (run.metadata or {}).get("gpu") if run else None
    device = device.get("name") if isinstance(device, dict) else device
    matched = match_gpu(device) if device else None
    default = names.index(matched["gpu"]) if matched and matched["gpu"] in names else \
        (names.index("H100 SXM") if "H100 SXM" in names else 0)
    c1, c2, c3 = st.columns([2, 1, 3])
    gpu_name = c1.selectbox("GPU", names, index=default, key="roofline_gpu")
    precision = c2.selectbox("Precision", PRECISIONS, key="roofline_precision")
    shape_text = c3.text_input("Input shapes (only for dynamic dims)", key="roofline_shapes",
                               placeholder="input: 1x3x224x224")
    onnx_measured = st.toggle("Measured ceilings", value=False, key="roofline_onnx_measured",
                              help="Predict on the roofs measured on this GPU model where data/gpu_specs.csv has "
                                   "them (see `measured_how`), instead of the datasheet.")
    if upload is None:
        st.info("Upload an .onnx file to analyse it.")
    else:
        data = upload.getvalue()
        try:
            shapes = _parse_shapes(shape_text)
            costs = _onnx_costs(hashlib.sha256(data).hexdigest(), data, precision, tuple(sorted(shapes.items())),
                                limit_mb * 1024 * 1024)
        except ModelError as exc:
            st.error(f"{upload.name}: {str(exc).splitlines()[0] if str(exc) else 'not a usable ONNX model'}")
        else:
            gpu = match_gpu(gpu_name)
            predicted = predict_layer_times(costs, gpu, precision, use_measured=onnx_measured)
            totals = onnx_totals(costs)
            ceilings = roofline_ceilings(gpu, precision, use_measured=onnx_measured)
            m = st.columns(5)
            m[0].metric("Nodes", f"{totals['nodes']}", help=f"{totals['counted_nodes']} with a cost formula")
            m[1].metric("GFLOPs", f"{totals['gflops']:.3f}", help="per inference; 1 multiply-add = 2 FLOPs")
            m[2].metric("Parameters", f"{totals['params'] / 1e6:.2f} M" if totals["params"] >= 1e5 else f"{totals['params']:,}")
            m[3].metric("Traffic", common.fmt_bytes(totals["bytes_read"] + totals["bytes_written"]),
                        help="compulsory DRAM bytes: every input read once, every output written once")
            m[4].metric(f"Predicted on {gpu_name}", common.fmt_ns(predicted["predicted_ns"].sum()),
                        help="sum of the per-node roofline lower bounds (no fusion, no launch overhead)")
            if totals["unknown_ops"]:
                st.warning("Not counted (no cost formula): " + ", ".join(
                    f"{op} × {n}" for op, n in sorted(totals["unknown_ops"].items())))
            st.plotly_chart(charts.predicted_times_figure(predicted), use_container_width=True,
                            key="roofline_onnx_chart")
            nodes = pd.DataFrame({
                "node": predicted["name"], "op": predicted["op_type"], "MFLOP": predicted["flops"] / 1e6,
                "MB": (predicted["bytes_read"] + predicted["bytes_written"]) / 1e6, "params": predicted["params"],
                "FLOP/B": predicted["intensity"], "Tensor Cores": predicted["tc_eligible"].map(
                    {True: "eligible", False: "not eligible"}).fillna("—"),
                "predicted µs": predicted["predicted_ns"] / 1e3, "bound": predicted["bound"],
                "findings": predicted["findings"].fillna("")})
            st.dataframe(nodes, hide_index=True, use_container_width=True, height=min(420, 35 * len(nodes) + 38), column_config={
                "MFLOP": st.column_config.NumberColumn(format="%.2f"),
                "MB": st.column_config.NumberColumn(format="%.3f"),
                "FLOP/B": st.column_config.NumberColumn(format="%.1f"),
                "predicted µs": st.column_config.NumberColumn(format="%.2f")})
            st.caption(f"{gpu_name} at {precision.upper()}: Tensor-Core roof "
                       + (f"{ceilings['tensor_core_flops'] / 1e12:.0f} TFLOP/s" if ceilings["tensor_core_flops"]
                          else "none at this precision")
                       + f", CUDA-core roof {ceilings['cuda_core_flops'] / 1e12:.1f} TFLOP/s, memory "
                       f"{ceilings['memory_bytes_per_s'] / 1e12:.2f} TB/s ({ceilings['source']}).")
