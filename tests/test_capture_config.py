"""Capture options: validation with one-line errors, names, planted counts, nsys command lines and finder."""

import os
import stat
from pathlib import Path

import pytest

from profiler.capture.config import CaptureConfig
from profiler.capture.nsys_cmd import (looks_like_metrics_failure, metrics_flag_from_help, profile_command,
                                       stats_command)
from profiler.capture.stats import describe, overhead_percent, percentile
from profiler.errors import CaptureError
from profiler.trace import nsys_binary
from profiler.trace.nsys_binary import find_nsys, nsys_install_hint, parse_nsys_version


def test_defaults_validate_and_name():
    cfg = CaptureConfig(model="resnet50", precision="fp16", batch=8).validate()
    assert cfg.default_name() == "resnet50_fp16_b8"
    assert CaptureConfig(model="transformer", d_model=500, precision="fp16").default_name() == \
        "transformer_d500_fp16_b8"
    assert CaptureConfig(pinned=True).default_name().endswith("_pinned")
    assert CaptureConfig(plant=["round_trip"]).validate().default_name().endswith("_planted")


def test_planted_counts_fixed_order():
    cfg = CaptureConfig(plant="round_trip,constant_upload,pageable_upload").validate()
    assert cfg.plant == ["pageable_upload", "round_trip", "constant_upload"]
    assert cfg.planted_counts() == {"pageable_upload": 1, "round_trip": 1, "constant_upload": 1}
    assert CaptureConfig().planted_counts() is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(backend="onnxruntime"), "unknown backend"),
    (dict(precision="int8"), "needs --backend tensorrt"),
    (dict(batch=0), "--batch must be at least 1"),
    (dict(iterations=0), "--iterations"),
    (dict(plant=["leak"]), "unknown --plant"),
    (dict(plant=["pageable_upload"], pinned=True), "contradict"),
    (dict(layer_ranges="all"), "--layer-ranges"),
    (dict(compile=True, cuda_graphs=True), "exclusive"),
    (dict(model="transformer", d_model=500, nhead=8), "not divisible"),
    (dict(backend="tensorrt", model="resnet50"), "needs an ONNX file"),
    (dict(input_shape="3,x,224"), "input-shape"),
])
def test_invalid_options(kwargs, match):
    with pytest.raises(CaptureError, match=match):
        CaptureConfig(**kwargs).validate()


def test_model_files(tmp_path):
    with pytest.raises(CaptureError, match="model file not found"):
        CaptureConfig(model=str(tmp_path / "nope.onnx")).validate()
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(CaptureError, match="empty"):
        CaptureConfig(model=str(empty)).validate()
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff\xfe" * 10)
    with pytest.raises(CaptureError, match="not an ONNX model"):
        CaptureConfig(model=str(junk)).validate()


def test_model_kinds():
    assert CaptureConfig(model="resnet50").model_kind() == "builtin"
    assert CaptureConfig(model="timm:vit_small_patch16_224").model_kind() == "builtin"
    assert CaptureConfig(model="mypkg.models:build").model_kind() == "callable"
    assert CaptureConfig(model="m.onnx").model_kind() == "file"
    assert CaptureConfig(model="dir/m.pt").model_kind() == "file"


def test_effective_layer_ranges():
    assert CaptureConfig().effective_layer_ranges() == ("leaf", None)
    assert CaptureConfig(compile=True).effective_layer_ranges()[0] == "none"
    assert CaptureConfig(cuda_graphs=True).effective_layer_ranges()[0] == "none"
    assert CaptureConfig(layer_ranges="emit_nvtx").effective_layer_ranges() == ("emit_nvtx", None)


def test_json_roundtrip():
    cfg = CaptureConfig(model="transformer", d_model=500, plant=["round_trip"])
    assert CaptureConfig.from_json(cfg.to_json()) == cfg


def test_profile_command_defaults():
    cmd = profile_command("/x/nsys", "/tmp/run/trace", ["python", "-m", "w"], gpu_metrics_frequency=1000)
    assert cmd[:2] == ["/x/nsys", "profile"] and cmd[-3:] == ["python", "-m", "w"]
    for flag in ("--trace=cuda,nvtx,cublas,cudnn", "--sample=none", "--cpuctxsw=none",
                 "--capture-range=cudaProfilerApi", "--capture-range-end=stop", "--export=sqlite",
                 "--gpu-metrics-devices=all", "--gpu-metrics-frequency=1000", "--output=/tmp/run/trace"):
        assert flag in cmd
    no = profile_command("nsys", "o", ["w"], gpu_metrics=False)
    assert not any("gpu-metrics" in a for a in no)
    old = profile_command("nsys", "o", ["w"], metrics_flag="--gpu-metrics-device")
    assert "--gpu-metrics-device=0" in old
    assert stats_command("nsys", "r.nsys-rep", "out/x")[-3:] == ["-o", "out/x", "r.nsys-rep"]


def test_metrics_flag_and_failure_text():
    assert metrics_flag_from_help("  --gpu-metrics-devices=<arg>\n") == "--gpu-metrics-devices"
    assert metrics_flag_from_help("  --gpu-metrics-device=<arg>\n") == "--gpu-metrics-device"
    assert metrics_flag_from_help("nothing") is None
    assert looks_like_metrics_failure("Error: GPU metrics are not supported on this device")
    assert not looks_like_metrics_failure("Traceback ... ZeroDivisionError")


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho 'NVIDIA Nsight Systems version 2025.3.1.90-test'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_nsys_order(tmp_path, monkeypatch):
    monkeypatch.setattr(nsys_binary, "STANDARD_GLOBS", (str(tmp_path / "opt/nsight-systems/*/bin"),
                                                        str(tmp_path / "opt/nsight-compute/*/host/target-linux-x64")))
    env = {"PATH": str(tmp_path / "empty")}
    assert find_nsys(env) is None
    ncu = _exe(tmp_path / "opt/nsight-compute/2025.3.1/host/target-linux-x64/nsys")
    assert find_nsys(env) == str(ncu)
    old = _exe(tmp_path / "opt/nsight-systems/2024.1.1/bin/nsys")
    new = _exe(tmp_path / "opt/nsight-systems/2025.3.1/bin/nsys")
    assert find_nsys(env) == str(new) and old.exists()
    on_path = _exe(tmp_path / "bin/nsys")
    assert find_nsys({"PATH": str(tmp_path / "bin")}) == str(on_path)
    assert find_nsys({"PATH": str(tmp_path / "bin"), "NSYS": str(ncu)}) == str(ncu)
    assert find_nsys({"NSYS": str(ncu.parent)}) == str(ncu)  # a folder holding nsys
    assert find_nsys({"PATH": str(tmp_path / "bin"), "NSYS": str(tmp_path / "missing")}) is None
    assert nsys_binary.nsys_version(str(new)).endswith("2025.3.1.90-test")


def test_install_hint():
    assert "install" in nsys_install_hint({}) and "NSYS=" in nsys_install_hint({})
    assert "not an executable" in nsys_install_hint({"NSYS": "/nope"})
    assert "\n" not in nsys_install_hint({})


def test_parse_version():
    assert parse_nsys_version("NVIDIA Nsight Systems version 2025.3.1.90-253135822126v0") == (2025, 3, 1, 90)
    assert parse_nsys_version("garbage") is None


def test_stats():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 90) == 5
    d = describe([1, 2, 3, 4, 100])
    assert d["median"] == 3 and d["n"] == 5 and d["p90"] == pytest.approx(61.6)
    assert describe([])["n"] == 0
    assert overhead_percent([10.1] * 5, [10.0] * 5) == pytest.approx(1.0)
