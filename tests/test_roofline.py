"""Roofline placement of measured layers (hand-made layer tables in layer_table's shape)."""

import math

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from profiler.analysis.roofline import (fused_parts, furthest_below_roof, match_layer_costs, module_path,
                                        predict_layer_times, roof_lines, roofline_ceilings, roofline_points)
from profiler.model.gpu_specs import match_gpu
from profiler.model.onnx_cost import onnx_node_costs
from tests.conftest_model import torchvision_onnx

H100 = match_gpu("NVIDIA H100 80GB HBM3")


def layers_frame(names, gpu_ns, instances=10, **extra):
    """A frame shaped like profiler.analysis.layers.layer_table's output."""
    n = len(names)
    frame = pd.DataFrame({"layer": range(n), "name": names, "instances": instances, "gpu_ns": gpu_ns,
                          "gpu_med_ns": np.asarray(gpu_ns) / instances, "kernels": 1, "share": 1 / n,
                          "tensor_core_share": 0.0, "dominant_kernel": ""})
    for key, value in extra.items():
        frame[key] = value
    return frame


def costs_frame(rows):
    """name, flops, bytes_read, bytes_written[, op_type, tc_eligible] -> a cost frame."""
    frame = pd.DataFrame(rows)
    if "op_type" not in frame:
        frame["op_type"] = "Conv"
    if "tc_eligible" not in frame:
        frame["tc_eligible"] = True
    frame["counted"] = True
    return frame


def test_ceilings_h100_fp16():
    c = roofline_ceilings(H100, "fp16")
    assert c["tensor_core_flops"] == pytest.approx(989.4e12)
    assert c["cuda_core_flops"] == pytest.approx(133.8e12)
    assert c["memory_bytes_per_s"] == pytest.approx(3.35e12)
    assert c["tensor_core_ridge"] == pytest.approx(989.4 / 3.35)
    assert c["source"] == "datasheet"
    over = roofline_ceilings(H100, "fp16", overrides={"memory_bytes_per_s": 3.0e12})
    assert over["tensor_core_ridge"] == pytest.approx(989.4 / 3.0) and over["source"] == "override"
    no_fp8 = roofline_ceilings(match_gpu("NVIDIA A100-SXM4-80GB"), "fp8")
    assert no_fp8["tensor_core_flops"] is None and no_fp8["tensor_core_ridge"] is None


def test_memory_and_compute_bound_points():
    costs = costs_frame([
        {"name": "mem", "flops": 1e9, "bytes_read": 8e6, "bytes_written": 2e6},  # 100 FLOP/B
        {"name": "comp", "flops": 1e12, "bytes_read": 5e8, "bytes_written": 5e8},  # 1000 FLOP/B
    ])
    # per instance: mem 1 ms (2e6 ns over 2 instances), comp 2 ms
    layers = layers_frame(["mem", "comp"], [2e6, 4e6], instances=2, tensor_core_share=[1.0, 1.0])
    p = roofline_points(layers, costs, H100, "fp16").set_index("name")
    assert p.loc["mem", "time_ns"] == 1e6
    assert p.loc["mem", "intensity"] == pytest.approx(100)
    assert p.loc["mem", "achieved_flops_per_s"] == pytest.approx(1e12)
    assert p.loc["mem", "bound"] == "memory" and p.loc["mem", "roof"] == "tensor core"
    assert p.loc["mem", "roof_flops_per_s"] == pytest.approx(100 * 3.35e12)
    assert p.loc["mem", "fraction_of_roof"] == pytest.approx(1e12 / 335e12)
    assert p.loc["mem", "below_roof_x"] == pytest.approx(335)
    assert p.loc["mem", "time_at_roof_ns"] == pytest.approx(1e9 / 335e12 * 1e9)
    assert p.loc["comp", "bound"] == "compute"
    assert p.loc["comp", "roof_flops_per_s"] == pytest.approx(989.4e12)
    assert p.loc["comp", "achieved_bytes_per_s"] == pytest.approx(1e9 / 2e-3)
    assert not p["above_roof"].any()


def test_cuda_core_roof_when_no_tensor_cores_ran():
    costs = costs_frame([{"name": "dw", "flops": 1e9, "bytes_read": 1e7, "bytes_written": 1e7}])
    p = roofline_points(layers_frame(["dw"], [1e7], tensor_core_share=0.0), costs, H100, "fp16").iloc[0]
    assert p["roof"] == "CUDA core" and p["peak_flops_per_s"] == pytest.approx(133.8e12)
    assert p["ridge"] == pytest.approx(133.8 / 3.35)
    # without a tensor_core_share column the cost's Tensor-Core eligibility decides
    layers = layers_frame(["dw"], [1e7]).drop(columns="tensor_core_share")
    assert roofline_points(layers, costs, H100, "fp16").iloc[0]["roof"] == "tensor core"


def test_above_roof_is_flagged():
    costs = costs_frame([{"name": "x", "flops": 1e12, "bytes_read": 1e6, "bytes_written": 0}])
    p = roofline_points(layers_frame(["x"], [10.0], instances=1, tensor_core_share=1.0), costs, H100).iloc[0]
    assert p["above_roof"] and p["fraction_of_roof"] > 1


def test_module_paths_and_fused_names():
    assert module_path("/layer1/layer1.0/conv1/Conv") == "layer1.0.conv1"
    assert module_path("/features/features.0/features.0.0/Conv") == "features.0.0"
    assert module_path("/encoder/layers.0/self_attn/MatMul_1") == "encoder.layers.0.self_attn"
    assert module_path("layer1.0.conv1") == "layer1.0.conv1"
    assert fused_parts("/a/Conv + /a/Relu") == ["/a/Conv", "/a/Relu"]
    assert fused_parts("PWN(PWN(/b/Sigmoid), /b/Mul)") == ["/b/Sigmoid", "/b/Mul"]
    assert fused_parts("{ForeignNode[/x/MatMul.../x/Add_3]}") == ["/x/MatMul.../x/Add_3"]


def test_torch_module_names_match_onnx_scope_names_by_call():
    costs = costs_frame([
        {"name": "/layer1/layer1.0/conv1/Conv", "flops": 100.0, "bytes_read": 10, "bytes_written": 10},
        {"name": "/layer1/layer1.0/relu/Relu", "flops": 1.0, "bytes_read": 2, "bytes_written": 2, "op_type": "Relu"},
        {"name": "/layer1/layer1.0/relu_1/Relu", "flops": 2.0, "bytes_read": 4, "bytes_written": 4, "op_type": "Relu"},
        {"name": "/layer1/layer1.0/relu_2/Relu", "flops": 3.0, "bytes_read": 6, "bytes_written": 6, "op_type": "Relu"},
    ])
    names = ["layer1.0.conv1", "layer1.0.relu", "layer1.0.relu", "layer1.0.relu", "layer1.0.bn1"]
    m = match_layer_costs(layers_frame(names, [1.0] * 5), costs)
    assert list(m["match"]) == ["module", "module", "module", "module", "none"]
    assert list(m["flops"][:4]) == [100.0, 1.0, 2.0, 3.0]  # k-th call of the ReLU gets the k-th node
    assert math.isnan(m["flops"].iloc[4])


def test_exact_names_from_module_records_take_the_kth_call():
    costs = costs_frame([{"name": "relu", "flops": f, "bytes_read": 1, "bytes_written": 1} for f in (5.0, 7.0)])
    m = match_layer_costs(layers_frame(["relu", "relu"], [1.0, 1.0]), costs)
    assert list(m["flops"]) == [5.0, 7.0] and set(m["match"]) == {"exact"}
    three = match_layer_costs(layers_frame(["relu"] * 3, [1.0] * 3), costs)
    assert list(three["flops"]) == [6.0] * 3  # call counts differ: the average


def _conv_relu_model():
    w = numpy_helper.from_array(np.ones((16, 8, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
         helper.make_node("Add", ["r", "x2"], ["y"], name="/Add")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8]),
              helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_fused_tensorrt_layers_drop_internal_traffic():
    costs = onnx_node_costs(_conv_relu_model(), "fp16")
    by_name = costs.set_index("name")
    act = 16 * 64 * 2  # one (1, 16, 8, 8) FP16 activation
    layers = layers_frame(["/conv/Conv + /relu/Relu + /Add", "Reformatting CopyNode for Input Tensor 0 to /conv/Conv",
                           "/conv/Conv"], [1000.0] * 3)
    m = match_layer_costs(layers, costs)
    assert m.loc[0, "match"] == "fused" and m.loc[0, "nodes"] == 3
    assert m.loc[0, "flops"] == by_name["flops"].sum()
    summed = (by_name["bytes_read"] + by_name["bytes_written"]).sum()
    # conv output and relu output stay on chip: 2 writes and 2 reads of one activation saved
    assert m.loc[0, "bytes"] == summed - 4 * act
    assert m.loc[0, "bytes"] == by_name.loc["/conv/Conv", "bytes_read"] + act + act  # x, w; x2; y
    assert m.loc[1, "match"] == "reformat" and math.isnan(m.loc[1, "flops"])
    assert m.loc[2, "match"] == "exact"
    via_info = match_layer_costs(layers_frame(["fused conv"], [1.0]), costs,
                                 layer_nodes={"fused conv": ["/conv/Conv", "/relu/Relu", "/Add"]})
    assert via_info.loc[0, "match"] == "layer_info" and via_info.loc[0, "bytes"] == m.loc[0, "bytes"]


def test_furthest_below_roof_and_excess_time():
    costs = costs_frame([{"name": n, "flops": 1e9, "bytes_read": 1e6, "bytes_written": 1e6} for n in "abc"])
    layers = layers_frame(list("abc"), [1e5, 1e6, 1e7], instances=1, tensor_core_share=1.0)
    p = roofline_points(layers, costs, H100)
    worst = furthest_below_roof(p, 2)
    assert list(worst["name"]) == ["c", "b"]
    assert list(furthest_below_roof(p, 1, by="excess_ns")["name"]) == ["c"]


def test_predict_layer_times():
    costs = costs_frame([
        {"name": "big", "flops": 989.4e9, "bytes_read": 1e6, "bytes_written": 0, "tc_eligible": True},
        {"name": "copy", "flops": 0.0, "bytes_read": 3.35e9, "bytes_written": 0.0, "tc_eligible": None},
        {"name": "view", "flops": 0.0, "bytes_read": 0.0, "bytes_written": 0.0, "tc_eligible": None},
    ])
    p = predict_layer_times(costs, H100, "fp16").set_index("name")
    assert p.loc["big", "predicted_ns"] == pytest.approx(1e6)  # 1 ms at 989.4 TFLOPS
    assert p.loc["big", "bound"] == "compute" and p.loc["big", "roof"] == "tensor core"
    assert p.loc["copy", "predicted_ns"] == pytest.approx(1e6) and p.loc["copy", "bound"] == "memory"
    assert p.loc["view", "predicted_ns"] == 0
    assert p["predicted_share"].sum() == pytest.approx(1)


def test_roof_lines():
    lines = roof_lines(roofline_ceilings(H100, "fp16"), points=50)
    assert len(lines) == 50
    assert lines["tensor_core"].max() == pytest.approx(989.4e12)
    assert lines["cuda_core"].max() == pytest.approx(133.8e12)
    low = lines.iloc[0]
    assert low["tensor_core"] == low["cuda_core"] == pytest.approx(low["intensity"] * 3.35e12)


def test_resnet50_every_conv_placed_none_above_roof():
    """Static ResNet-50 costs joined to TensorRT-style layer names (conv + relu fused), with
    per-layer times no faster than the roofline allows: every conv is placed, none above."""
    costs = onnx_node_costs(torchvision_onnx("resnet50"), "fp16")
    convs = costs[costs["op_type"] == "Conv"]["name"].tolist()
    relu_after = {}
    for _, row in costs.iterrows():
        if row["op_type"] == "Relu":
            relu_after[row["input_names"][0]] = row["name"]
    names = []
    for name in convs:
        out = costs.set_index("name").loc[name, "output_names"][0]
        names.append(f"{name} + {relu_after[out]}" if out in relu_after else name)
    predicted = predict_layer_times(costs, H100, "fp16").set_index("name")["predicted_ns"]
    gpu_ns = [predicted[n] * 2.5 * 100 for n in convs]  # 100 instances, each 2.5x slower than the roof
    layers = layers_frame(names, gpu_ns, instances=100, tensor_core_share=1.0)
    p = roofline_points(layers, costs, H100, "fp16")
    assert len(p) == 53 and p["flops"].notna().all()
    assert (p["match"] == "fused").sum() + (p["match"] == "exact").sum() == 53
    assert not p["above_roof"].any()
    assert p["fraction_of_roof"].max() < 1
    assert set(p["bound"]) <= {"memory", "compute"}


def test_real_h100_resnet18_fp16_run_every_conv_under_its_roof():
    """The captured PyTorch ResNet-18 FP16 run (tests/data, H100, batch 4, one NVTX range per
    leaf module): module costs joined by name; every conv placed, none above its roof."""
    from pathlib import Path

    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from profiler.analysis.summary import analyze
    from profiler.model.torch_cost import module_costs
    from profiler.trace.tables import open_trace
    from tests.conftest_model import module_records

    data = Path(__file__).parent / "data" / "resnet18_fp16_b4.sqlite.xz"
    if not data.exists():
        pytest.skip("captured run not present")
    import json
    meta = json.loads(data.with_name("resnet18_fp16_b4.metadata.json").read_text())
    gpu = match_gpu(meta["gpu"]["name"], sm_count=meta["gpu"]["sm_count"])
    assert gpu["gpu"] == "H100 SXM"
    layers = analyze(open_trace(data)).layers
    model = torchvision.models.resnet18(weights=None).eval()
    costs = module_costs(module_records(model, torch.randn(meta["batch"], 3, 224, 224)), precision="fp16")
    p = roofline_points(layers, costs, gpu, "fp16")
    assert (p["match"] == "exact").all()
    convs = p[p["op_types"] == "Conv2d"]
    assert len(convs) == 20 and convs["fraction_of_roof"].notna().all()
    assert not convs["above_roof"].any() and convs["fraction_of_roof"].max() < 0.5
    worst = furthest_below_roof(convs, 3)
    assert len(worst) == 3 and (worst["fraction_of_roof"] < 0.1).all()
