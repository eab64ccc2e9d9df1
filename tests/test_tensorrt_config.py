"""TensorRT build-flag mapping, engine cache keys, trtexec command lines: no tensorrt needed."""

import pytest

from profiler.backends.trt_config import (builder_plan, concrete_shape, engine_cache_key, onnx_has_qdq,
                                          trtexec_command)
from profiler.errors import CaptureError

TRT10_FLAGS = {"FP16", "BF16", "INT8", "TF32", "SPARSE_WEIGHTS", "FP8", "STRICT_TYPES", "REFIT"}
TRT11_FLAGS = {"TF32", "SPARSE_WEIGHTS", "REFIT", "DEBUG"}


def test_trt10_precisions():
    assert builder_plan("fp32", False, "10.13.0", TRT10_FLAGS)["clear"] == ["TF32"]
    assert builder_plan("tf32", False, "10.13.0", TRT10_FLAGS)["set"] == ["TF32"]
    assert builder_plan("fp16", False, "10.13.0", TRT10_FLAGS)["set"] == ["FP16"]
    p = builder_plan("int8", False, "10.13.0", TRT10_FLAGS, calibrator="minmax")
    assert p["set"] == ["INT8"] and p["calibrator"] == "minmax" and not p["strongly_typed"]
    p = builder_plan("best", True, "10.13.0", TRT10_FLAGS)
    assert p["set"] == ["FP16", "INT8", "SPARSE_WEIGHTS"] and p["calibrator"] == "entropy"
    p = builder_plan("int8", False, "10.13.0", TRT10_FLAGS, has_qdq=True)
    assert p["set"] == ["INT8"] and p["calibrator"] is None
    assert builder_plan("fp16", False, "10.0.1", TRT10_FLAGS)["profiling_verbosity"] == "DETAILED"


def test_trt11_strong_typing():
    assert builder_plan("fp32", True, "11.4.0", TRT11_FLAGS)["set"] == ["SPARSE_WEIGHTS"]
    with pytest.raises(CaptureError, match="strongly typed"):
        builder_plan("fp16", False, "11.4.0", TRT11_FLAGS)
    with pytest.raises(CaptureError, match="Q/DQ|QuantizeLinear"):
        builder_plan("int8", False, "11.4.0", TRT11_FLAGS)
    p = builder_plan("int8", False, "11.4.0", TRT11_FLAGS, has_qdq=True)
    assert p["set"] == [] and p["calibrator"] is None and p["strongly_typed"]


def test_unknown_precision_and_missing_sparsity():
    with pytest.raises(CaptureError):
        builder_plan("fp64", False, "10.1", TRT10_FLAGS)
    with pytest.raises(CaptureError, match="SPARSE_WEIGHTS"):
        builder_plan("fp16", True, "10.1", {"FP16"})


def test_qdq_detection():
    assert onnx_has_qdq(["Conv", "QuantizeLinear", "DequantizeLinear"])
    assert not onnx_has_qdq(["Conv", "Relu"])


def test_engine_cache_key_changes_with_inputs():
    plan = builder_plan("fp16", False, "10.13.0", TRT10_FLAGS)
    k = engine_cache_key("abc", plan, {"input": [8, 3, 224, 224]}, "10.13.0", "NVIDIA H100", 4096)
    assert k == engine_cache_key("abc", plan, {"input": [8, 3, 224, 224]}, "10.13.0", "NVIDIA H100", 4096)
    assert k != engine_cache_key("abd", plan, {"input": [8, 3, 224, 224]}, "10.13.0", "NVIDIA H100", 4096)
    assert k != engine_cache_key("abc", plan, {"input": [4, 3, 224, 224]}, "10.13.0", "NVIDIA H100", 4096)
    assert k != engine_cache_key("abc", plan, {"input": [8, 3, 224, 224]}, "10.14.0", "NVIDIA H100", 4096)
    other = builder_plan("fp32", False, "10.13.0", TRT10_FLAGS)
    assert k != engine_cache_key("abc", other, {"input": [8, 3, 224, 224]}, "10.13.0", "NVIDIA H100", 4096)
    assert len(k) == 32


def test_trtexec_command():
    cmd = trtexec_command("trtexec", "m.onnx", "int8", "10.13.0", sparsity=True, shapes={"input": [8, 3, 224, 224]},
                          layer_info="li.json", profile="p.json")
    assert "--profilingVerbosity=detailed" in cmd and "--exportLayerInfo=li.json" in cmd
    assert "--exportProfile=p.json" in cmd and "--int8" in cmd and "--sparsity=enable" in cmd
    assert "--shapes=input:8x3x224x224" in cmd and "--separateProfileRun" in cmd
    assert "--fp16" in trtexec_command("trtexec", "m.onnx", "fp16", "10.13.0")
    assert "--noTF32" in trtexec_command("trtexec", "m.onnx", "fp32", "10.13.0")
    assert not any(a in ("--fp16", "--int8") for a in trtexec_command("trtexec", "m.onnx", "fp16", "11.4.0"))


def test_concrete_shape():
    assert concrete_shape([None, 3, 224, 224], 8) == [8, 3, 224, 224]
    assert concrete_shape([-1, 3, 224, 224], 2) == [2, 3, 224, 224]
    assert concrete_shape([1, 3, 224, 224], 8) == [1, 3, 224, 224]
    with pytest.raises(CaptureError, match="input-shape"):
        concrete_shape([None, 3, None, 224], 8)
