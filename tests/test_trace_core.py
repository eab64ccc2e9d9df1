"""Trace core on real H100 captures (tests/data, made by our harness): our tables equal nsys's own reports.

Each `tests/data/<name>.sqlite.xz` has `nsys stats --format csv` reports beside it
(`<name>_cuda_gpu_kern_sum.csv`, `_cuda_gpu_mem_time_sum.csv`, `_cuda_gpu_mem_size_sum.csv`, `_nvtx_sum.csv`,
`_nvtx_gpu_proj_sum.csv`), produced on the device from the same report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from profiler.analysis import kernels, memory, ranges
from profiler.analysis.summary import analyze, to_json
from profiler.trace import open_trace
from profiler.trace.tables import _nest_by_stack, nest_ranges

DATA = Path(__file__).parent / "data"
TRACES = sorted(p.name[: -len(".sqlite.xz")] for p in DATA.glob("*.sqlite.xz"))
WITH_REPORTS = [n for n in TRACES if (DATA / f"{n}_cuda_gpu_kern_sum.csv").exists()]


def test_real_traces_with_nsys_reports_are_present():
    assert len(TRACES) >= 2, "tests/data must hold real captures"
    assert WITH_REPORTS == TRACES, "every test trace needs its nsys stats CSVs beside it"


@pytest.fixture(scope="module", params=WITH_REPORTS)
def case(request):
    name = request.param
    trace = open_trace(DATA / f"{name}.sqlite.xz")
    yield name, trace, analyze(trace)
    trace.close()


def report(name: str, kind: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{name}_{kind}.csv")


def test_kernel_summary_equals_cuda_gpu_kern_sum(case):
    name, trace, _ = case
    ours = kernels.kernel_summary(trace.kernels)
    theirs = report(name, "cuda_gpu_kern_sum")
    assert len(ours) == len(theirs)
    m = ours.merge(theirs, left_on="name", right_on="Name", validate="one_to_one")
    assert len(m) == len(theirs)
    assert (m["instances"] == m["Instances"]).all()
    for ours_col, col in [("total_ns", "Total Time (ns)"), ("min_ns", "Min (ns)"), ("max_ns", "Max (ns)")]:
        assert (m[ours_col] == m[col]).all(), ours_col
    np.testing.assert_allclose(m["med_ns"], m["Med (ns)"], atol=0.5)
    np.testing.assert_allclose(m["avg_ns"], m["Avg (ns)"], atol=0.05)
    np.testing.assert_allclose(m["std_ns"], m["StdDev (ns)"], atol=0.05)
    # same order as nsys: by total time, descending
    assert list(ours["total_ns"]) == sorted(ours["total_ns"], reverse=True)


def test_memory_summary_equals_mem_time_and_size_sums(case):
    name, trace, _ = case
    ours = memory.memory_summary(trace.memcpy, trace.memset)
    times = report(name, "cuda_gpu_mem_time_sum")
    sizes = report(name, "cuda_gpu_mem_size_sum")
    label = ours["operation"].map(lambda op: "[CUDA memset]" if op == "memset" else f"[CUDA memcpy {op}]")
    t = ours.assign(label=label).merge(times, left_on="label", right_on="Operation", validate="one_to_one")
    assert len(t) == len(times) == len(ours)
    assert (t["count"] == t["Count"]).all() and (t["total_ns"] == t["Total Time (ns)"]).all()
    s = ours.assign(label=label).merge(sizes, left_on="label", right_on="Operation")
    np.testing.assert_allclose(s["total_bytes"] / 1e6, s["Total (MB)"], atol=0.0005)


def test_nvtx_summary_equals_nvtx_sum(case):
    name, trace, _ = case
    ours = ranges.nvtx_summary(trace.nvtx)
    theirs = report(name, "nvtx_sum")
    m = ours.merge(theirs, left_on=["range", "style"], right_on=["Range", "Style"], validate="one_to_one")
    assert len(m) == len(theirs) == len(ours)
    assert (m["instances"] == m["Instances"]).all() and (m["total_ns"] == m["Total Time (ns)"]).all()
    assert (m["min_ns"] == m["Min (ns)"]).all() and (m["max_ns"] == m["Max (ns)"]).all()


def test_gpu_projection_equals_nvtx_gpu_proj_sum(case):
    """Projected time (first op start to last op end, summed over instances) and op counts, per range."""
    name, trace, a = case
    ours = ranges.nvtx_gpu_projection_summary(trace.nvtx, a.range_stats)
    theirs = report(name, "nvtx_gpu_proj_sum")
    m = ours.merge(theirs, left_on=["range", "style"], right_on=["Range", "Style"], validate="one_to_one")
    assert len(m) == len(theirs) == len(ours)
    assert (m["gpu_ops"] == m["Total GPU Ops"]).all()
    assert (m["proj_ns"] == m["Total Proj Time (ns)"]).all()
    assert (m["range_ns"] == m["Total Range Time (ns)"]).all()
    # busy time is a union of intervals: never more than the span, never more than the summed durations
    assert (m["busy_ns"] <= m["proj_ns"]).all() and (m["busy_ns"] <= m["gpu_ns"]).all()


def test_stages_partition_iteration_time(case):
    name, trace, a = case
    meta = json.loads((DATA / f"{name}.metadata.json").read_text())
    st = a.stages.set_index("name")
    assert list(st.index) == ["preprocess", "inference", "postprocess", "other"]
    assert (st.loc[["preprocess", "inference", "postprocess"], "instances"] == meta["iterations"]).all()
    assert 0.99 <= st["share"].sum() <= 1.0 + 1e-9 and (st["share"] >= 0).all()
    # the GPU cannot be busier than the stage is long... except for work still running after the range
    # closes; the harness synchronises at the end of inference, so there it must hold
    assert st.loc["inference", "gpu_ns"] <= st.loc["inference", "total_ns"]
    per_it = a.per_iteration
    assert len(per_it) == meta["iterations"]
    assert per_it["total"].sum() == trace.nvtx.loc[trace.nvtx["text"].astype(str).str.match(r"iteration_\d+$"),
                                                   "duration_ns"].sum()


def test_layers_one_row_per_position_with_all_iterations(case):
    name, trace, a = case
    meta = json.loads((DATA / f"{name}.metadata.json").read_text())
    layers = a.layers
    if not meta.get("layer_ranges"):  # a capture without per-layer ranges (tools/capture_sync_copies.py)
        assert layers.empty
        return
    assert len(layers) > 10
    assert (layers["instances"] == meta["iterations"]).all()
    assert list(layers["layer"]) == list(range(len(layers)))
    # layer GPU time adds up to at most the inference stage's summed GPU time
    inf = a.stages.set_index("name").loc["inference"]
    assert layers["gpu_ns"].sum() <= inf["gpu_sum_ns"]
    assert layers["share"].sum() <= 1.0 + 1e-9
    assert layers["tensor_core_share"].between(0, 1).all()
    if meta.get("layer_ranges") == "leaf":  # per-module ranges: names are module paths, e.g. layer1.0.conv1
        assert "conv1" in set(layers["name"]) and any(n.startswith("layer4.") for n in layers["name"])
        conv1 = layers.set_index("name").loc["conv1"]
        # 3 input channels: cuDNN cannot use Tensor Cores for the stem convolution
        assert conv1["tensor_core_share"] == 0.0
        convs = layers[layers["name"].str.contains(r"layer\d\.\d\.conv")]
        assert (convs["tensor_core_share"] > 0).all() and (convs["dominant_kernel"] != "").all()
    else:  # emit_nvtx op ranges: op ids are stripped so the same op lines up across iterations
        assert layers["name"].str.startswith("aten::").all()
        assert not layers["name"].str.contains("op_id").any()


def test_json_contract(case):
    name, trace, a = case
    out = to_json(a)
    json.dumps(out)  # serialisable
    assert out["device"]["name"].startswith("NVIDIA")
    k = out["kernels"][0]
    assert {"name", "instances", "total_ns", "avg_ns", "med_ns", "min_ns", "max_ns", "tensor_core"} <= set(k)
    assert {"operation", "count", "total_ns", "total_bytes"} <= set(out["memory_ops"][0])
    assert {"name", "instances", "total_ns", "gpu_ns", "share"} <= set(out["stages"][0])
    if a.layers.empty:
        assert out["layers"] == []
    else:
        assert {"name", "instances", "gpu_ns", "kernels", "tensor_core_share"} <= set(out["layers"][0])
    assert sum(k["instances"] for k in out["kernels"]) == len(trace.kernels)


def test_tensor_core_kernel_names():
    tc = [
        "sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x64_warpgroupsize1x1x1",
        "void cutlass::Kernel2<cutlass_80_tensorop_f16_s16816gemm_f16_128x128_64x3_tn_align2>(T1::Params)",
        "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn", "volta_h884gemm_128x128_ldg8_nn",
        "trt_turing_h1688cudnn_128x128_ldg8_relu_exp_small_nhwc_tn_v1", "nvjet_hsh_128x256_64x4_2x1_v_bz_coopB_NNT",
        "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 64, 64, 4>>(Flash_fwd_params)",
        "sm80_xmma_gemm_i8i8_i8i32_f32_tn_n_tilesize128x128x64_stage4", "fmha_v2_flash_attention_fp16_64_32_S_128",
        "sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16",
    ]
    cuda_cores = [
        "void implicit_convolve_sgemm<__half, __half, 128, 5, 5, 3, 3, 3, 1, false, false, true>(int, int, int)",
        "void at::native::elementwise_kernel<128, 4>(int, T3)", "ampere_sgemm_128x64_nn", "cutlass_80_simt_sgemm",
        "void gemv2T_kernel_val<int, int, __half, __half, float, 128, 16, 4, 4, false>(T1)",
        "sm80_xmma_fprop_implicit_gemm_f32f32_f32f32_f32_nhwckrsc_nhwc_tilesize128x64x8",
        "void cudnn::engines_precompiled::nchwToNhwcKernel<__half, __half, float, false, true, 0>(...)",
        "void at::native::batch_norm_transform_input_kernel<c10::Half, float>(...)",
    ]
    assert all(kernels.is_tensor_core_kernel(n) for n in tc), [n for n in tc if not kernels.is_tensor_core_kernel(n)]
    assert not any(kernels.is_tensor_core_kernel(n) for n in cuda_cores)


def test_vectorised_nesting_matches_stack_walk():
    rng = np.random.default_rng(0)
    # properly nested push/pop ranges on two threads, with equal timestamps and zero-length ranges
    rows = []
    for tid in (1, 2):
        t = 0
        for _ in range(50):
            s = t
            children = []
            c = s
            for _ in range(rng.integers(0, 4)):
                ln = int(rng.integers(0, 20))
                children.append((tid, c, c + ln))
                c += ln + int(rng.integers(0, 3))
            e = c + int(rng.integers(0, 5))
            rows.append((tid, s, e))
            rows += children
            t = e + int(rng.integers(0, 3))
    df = pd.DataFrame(rows, columns=["tid", "start", "end"]).sort_values(
        ["tid", "start", "end"], ascending=[True, True, False], kind="stable").reset_index(drop=True)
    ids = np.arange(len(df)) + 100
    depth, parent = nest_ranges(df["tid"].to_numpy(), df["start"].to_numpy(), df["end"].to_numpy(), ids)
    for tid, g in df.groupby("tid"):
        d, p = _nest_by_stack(g["start"].to_numpy(), g["end"].to_numpy())
        idx = g.index.to_numpy()
        assert (depth[idx] == d).all()
        assert (parent[idx] == np.where(p >= 0, ids[idx][np.maximum(p, 0)], -1)).all()
    assert depth.max() >= 1


def test_partly_overlapping_start_end_ranges_get_a_true_container():
    # A [0,100) contains B [10,50) and C [40,80) (B and C overlap partly); D [45,60) is inside both.
    start = np.array([0, 10, 40, 45])
    end = np.array([100, 50, 80, 60])
    depth, parent = nest_ranges(np.zeros(4, dtype=np.int64), start, end, np.arange(4))
    assert list(parent[:3]) == [-1, 0, 0]
    assert parent[3] in (1, 2) and depth[3] == 2


def test_tensor_core_names_agree_with_ncu_hardware_counters():
    """ncu on the H100 (ResNet-50 FP16 b8, one forward, 347 kernels): a kernel issued matrix MMA
    instructions iff tensor-pipe instructions minus HFMA2.MMA ones are > 0 (../shared/device/NSYS.md).
    Our name-based flag must agree on every kernel, including elementwise kernels that use HFMA2.MMA."""
    ncu = pd.read_csv(DATA / "ncu_resnet50_fp16_b8_tensor_pipe.csv")
    hardware = (ncu["tensor_inst"] - ncu["hfma2_inst"]) > 0
    ours = ncu["kernel"].map(kernels.is_tensor_core_kernel)
    assert hardware.sum() >= 50 and (~hardware).sum() >= 250
    assert ((ncu["hfma2_inst"] > 0) & ~hardware).any()  # the trap exists in this data...
    assert (ours == hardware).all(), list(ncu.loc[ours != hardware, "kernel"].unique())  # ...and is avoided
