"""run_roofline on the bundled H100 runs (data/samples): costs from modules.json, GPU from the trace."""

from __future__ import annotations

import pytest

from profiler.analysis.roofline import POINT_COLUMNS, furthest_below_roof, run_roofline
from profiler.analysis.summary import analyze
from profiler.trace import open_trace
from tests.conftest import sample_dirs

RESNET = "resnet50_fp16_b8"


def _run(d):
    return run_roofline(analyze(open_trace(d / "trace.sqlite.xz")), d)


@pytest.fixture(scope="module")
def resnet_points():
    d = next((d for d in sample_dirs() if d.name == RESNET), None)
    if d is None:
        pytest.skip(f"bundled run {RESNET} not present")
    return _run(d)


def test_resnet50_fp16_every_conv_placed_and_below_its_roof(resnet_points):
    p = resnet_points
    assert p.attrs["gpu"]["gpu"] == "H100 SXM" and p.attrs["precision"] == "fp16"
    assert p.attrs["cost_source"] == "modules.json" and (p["match"] == "exact").all()
    convs = p[p["op_types"] == "Conv2d"]
    assert len(convs) == 53  # ResNet-50: stem + 16 bottlenecks x 3 + 4 downsample convs
    assert (convs["flops"] > 0).all() and convs["fraction_of_roof"].notna().all()
    assert convs["intensity"].notna().all() and (convs["achieved_flops_per_s"] > 0).all()
    assert (convs["fraction_of_roof"] <= 1).all() and not convs["above_roof"].any()
    assert convs["flops"].sum() == pytest.approx(8 * 2 * 4.089e9, rel=0.02)  # batch 8, 4.09 GMACs each
    # compute-bound layers of any kind are never above their roof (that would be a counting error)
    compute = p[p["bound"] == "compute"]
    assert (compute["fraction_of_roof"] <= 1).all()
    # only small memory-bound element-wise layers may beat the DRAM roof (input still in L2)
    above = p[p["above_roof"]]
    assert set(above["bound"]) <= {"memory"} and set(above["op_types"]) <= {"ReLU"}


def test_resnet50_fp16_names_the_layers_furthest_below_their_roof(resnet_points):
    worst = furthest_below_roof(resnet_points, 5)
    assert len(worst) == 5
    assert worst["fraction_of_roof"].is_monotonic_increasing
    placed = resnet_points["fraction_of_roof"].dropna()
    assert worst["fraction_of_roof"].iloc[0] == placed.min()
    assert (worst["fraction_of_roof"] < 0.05).all()
    lost = furthest_below_roof(resnet_points, 5, by="excess_ns")
    assert lost["excess_ns"].is_monotonic_decreasing and (lost["excess_ns"] > 0).all()


@pytest.mark.parametrize("name", [d.name for d in sample_dirs()])
def test_every_bundled_run(name):
    d = next(d for d in sample_dirs() if d.name == name)
    p = _run(d)
    assert list(p.columns[:2]) == POINT_COLUMNS[:2] and set(POINT_COLUMNS) <= set(p.columns)
    assert p.attrs["gpu"] is not None and p.attrs["ceilings"]["memory_bytes_per_s"] > 0
    assert p.attrs["placed"] > 0, p.attrs["note"]
    placed = p[p["fraction_of_roof"].notna()]
    assert (placed["bound"].isin(["memory", "compute"])).all()
    assert (placed[placed["bound"] == "compute"]["fraction_of_roof"] <= 1).all()


def test_metadata_dict_without_modules_and_unknown_gpu(resnet_points):
    class FakeTrace:
        device = {"name": "Imaginary GPU 9000"}

    class FakeAnalysis:
        trace = FakeTrace()
        layers = None

    p = run_roofline(FakeAnalysis(), {"precision": "fp16"})
    assert p.empty and "not in data/gpu_specs.csv" in p.attrs["note"]
    FakeTrace.device = {"name": "NVIDIA H100 80GB HBM3", "sm_count": 132}
    import pandas as pd
    FakeAnalysis.layers = pd.DataFrame({"name": ["conv1"], "instances": [1], "gpu_ns": [1000], "layer": [0]})
    p = run_roofline(FakeAnalysis(), {"precision": "fp16"})
    assert p.empty and "no model costs" in p.attrs["note"]


def test_resnet50_fp16_under_measured_h100_roofs():
    """Measured ceilings (data/gpu_specs.csv, benchmarks/measure_ceilings.py on the lent H100) on request: lower
    roofs; the only layers above them are memory-bound 1x1 convolutions a little over the measured DRAM roof
    (their input still sits in the 50 MB L2), which is why datasheet roofs stay the default."""
    d = next((d for d in sample_dirs() if d.name == RESNET), None)
    if d is None:
        pytest.skip(f"bundled run {RESNET} not present")
    p = run_roofline(analyze(open_trace(d / "trace.sqlite.xz")), d, use_measured=True)
    ceilings = p.attrs["ceilings"]
    assert ceilings["source"] == "measured"
    assert ceilings["tensor_core_flops"] == pytest.approx(748.5e12)
    assert ceilings["memory_bytes_per_s"] == pytest.approx(2990.6e9)
    convs = p[p["op_types"] == "Conv2d"]
    assert len(convs) == 53 and convs["fraction_of_roof"].notna().all()
    above = convs[convs["above_roof"]]
    assert set(above["bound"]) <= {"memory"} and (above["fraction_of_roof"] < 1.15).all()
    assert all(name.endswith("conv1") and not name.startswith("conv1") for name in above["name"])  # 1x1 convs
    assert (convs[convs["bound"] == "compute"]["fraction_of_roof"] <= 1).all()
