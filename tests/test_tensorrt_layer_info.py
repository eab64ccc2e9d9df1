"""TensorRT layer information (IEngineInspector / trtexec JSON) parsing: no GPU, no tensorrt needed."""

import json
from pathlib import Path

import pytest

from profiler.backends.layer_info import (join_profile, onnx_nodes, parse_layer_info, parse_trtexec_profile,
                                          precision_counts, precision_of)

FIX = Path(__file__).parent / "fixtures" / "tensorrt"


def load(name):
    return (FIX / name).read_text()


def test_trt8_detailed_layers_precision_tactic():
    info = parse_layer_info(load("inspector_trt8_detailed.json"))
    assert info["verbosity"] == "detailed"
    names = [L["name"] for L in info["layers"]]
    assert names == ["Reformatting CopyNode for Input Tensor 0 to conv1 + relu1", "conv1 + relu1", "maxpool", "fc"]
    conv = info["layers"][1]
    assert conv["type"] == "CaskConvolution" and conv["precision"] == "fp16"
    assert conv["kernel"].startswith("sm80_xmma_fprop_implicit_gemm_f16f16")
    assert conv["attributes"]["Kernel"] == [7, 7] and conv["attributes"]["Groups"] == 1
    assert conv["outputs"][0]["dims"] == [8, 64, 112, 112]
    assert conv["fused"] == 2  # "conv1 + relu1"
    assert info["layers"][0]["tactic"] == "0x00000000000003ea" and info["layers"][0]["kernel"] is None
    assert info["layers"][3]["precision"] == "fp32"  # fc writes FP32 logits
    assert [t["name"] for t in info["io"]] == ["input", "logits"]


def test_trt10_metadata_onnx_nodes_int8_and_sparse():
    info = parse_layer_info(load("inspector_trt10_detailed.json"))
    first = info["layers"][0]
    assert first["onnx_nodes"] == ["/conv1/Conv", "/relu/Relu"] and first["fused"] == 2
    assert first["precision"] == "int8" and first["stream"] == 0
    assert info["layers"][1]["attributes"]["HasSparseWeights"] == 1
    assert info["layers"][1]["precision"] == "fp16"
    assert precision_counts(info) == {"int8": 1, "fp16": 1, "fp32": 2}


def test_trt11_io_tensors():
    info = parse_layer_info(json.loads(load("inspector_trt11_io_tensors.json")))
    assert [(t["name"], t["mode"], t["dtype"]) for t in info["io"]] == [("input_0", "input", "Half"),
                                                                       ("output_0", "output", "Half")]
    assert {L["precision"] for L in info["layers"]} == {"fp16"}


def test_layer_names_only():
    info = parse_layer_info(load("inspector_layer_names_only.json"))
    assert info["verbosity"] == "layer_names_only"
    assert [L["name"] for L in info["layers"]][1] == "conv1 + relu1"
    assert all(L["precision"] is None for L in info["layers"])


def test_layers_as_json_strings_are_decoded():
    layers = json.loads(load("inspector_trt8_detailed.json"))["Layers"]
    info = parse_layer_info({"Layers": [json.dumps(L) for L in layers]})
    assert info["verbosity"] == "detailed" and info["layers"][1]["precision"] == "fp16"


def test_not_layer_info():
    with pytest.raises(ValueError):
        parse_layer_info('{"something": 1}')


def test_trtexec_profiles_and_join():
    p8 = parse_trtexec_profile(load("trtexec_profile_trt8.json"))
    assert p8["count"] == 1000 and p8["layers"][1]["average_ms"] == pytest.approx(0.1205)
    assert p8["layers"][1]["median_ms"] is None
    p10 = parse_trtexec_profile(load("trtexec_profile_trt10.json"))
    assert p10["layers"][0]["median_ms"] == pytest.approx(0.0801)
    info = join_profile(parse_layer_info(load("inspector_trt8_detailed.json")), p8)
    by = {L["name"]: L for L in info["layers"]}
    assert by["conv1 + relu1"]["percentage"] == pytest.approx(28.7)
    assert by["Reformatting CopyNode for Output Tensor 0 to fc"]["profile_only"] is True
    with pytest.raises(ValueError):
        parse_trtexec_profile('{"count": 3}')


@pytest.mark.parametrize("fmt,expected", [
    ("Row major linear FP32", "fp32"), ("Row major linear FP16 format", "fp16"),
    ("Thirty-two wide channel vectorized row major Int8 format", "int8"),
    ("Channel major FP16 format where channel % 8 == 0", "fp16"), ("Row major linear BF16 format", "bf16"),
    ("Row major linear FP8 format", "fp8"), ("Half", "fp16"), ("Float", "fp32"), (None, None)])
def test_precision_of(fmt, expected):
    assert precision_of(fmt) == expected


def test_onnx_nodes():
    assert onnx_nodes("[ONNX Layer: a]\x1e[ONNX Layer: b/c]") == ["a", "b/c"]
    assert onnx_nodes("") == []
