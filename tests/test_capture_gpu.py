"""Captures on a real GPU under a real nsys. Marked `gpu`; skipped where torch, CUDA or nsys is missing (CI).
Run on the device with: python -m pytest -q -m gpu tests/test_capture_gpu.py"""

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu
REPO = Path(__file__).resolve().parents[1]


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


HAVE_CUDA = _cuda()
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="needs torch with a CUDA GPU")


def _nsys():
    from profiler.trace.nsys_binary import find_nsys

    return find_nsys()


needs_nsys = pytest.mark.skipif(not HAVE_CUDA or _nsys() is None, reason="needs a CUDA GPU and nsys")


def capture(tmp_path, *args):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "profiler", "run", *args, "--out", str(out), "--quiet"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return out, json.loads((out / "metadata.json").read_text())


def iteration_copies(db: Path):
    con = sqlite3.connect(db)
    dom = con.execute("select domainId from NVTX_EVENTS where eventType = 75 and text = 'trtscope'").fetchone()[0]
    its = con.execute("select e.start, e.end from NVTX_EVENTS e left join StringIds s on s.id = e.textId where "
                      "e.eventType = 59 and e.domainId = ? and coalesce(e.text, s.value) like 'iteration%'",
                      (dom,)).fetchall()
    out = []
    for s, e in its:
        out.append(con.execute("select copyKind, srcKind, dstKind from CUPTI_ACTIVITY_KIND_MEMCPY where start >= ? "
                               "and end <= ?", (s, e)).fetchall())
    con.close()
    return out


@needs_nsys
def test_pinned_clean_capture(tmp_path):
    out, meta = capture(tmp_path, "--model", "resnet18", "--precision", "fp16", "--batch", "2", "--iterations", "5",
                        "--warmup", "2", "--pinned")
    for f in ("trace.sqlite", "summary.json", "modules.json", "command.txt"):
        assert (out / f).is_file()
    assert meta["trace_check"]["iteration_ranges"] == 5 and meta["trace_check"]["domain_found"]
    assert meta["gpu"]["name"] and meta["versions"]["nsys"] and meta["versions"]["driver"]
    its = iteration_copies(out / "trace.sqlite")
    assert len(its) == 5
    for copies in its:
        assert [c for c in copies if c[0] == 1] == [(1, 1, 2)]  # one H2D, pinned -> device
        assert [c for c in copies if c[0] == 2] == [(2, 2, 1)]  # one D2H, device -> pinned
    summary = json.loads((out / "summary.json").read_text())
    assert "error" not in summary and "unavailable" not in summary


@needs_nsys
def test_planted_capture_counts(tmp_path):
    out, meta = capture(tmp_path, "--model", "mobilenet_v2", "--precision", "fp16", "--batch", "2", "--iterations",
                        "4", "--warmup", "2", "--plant", "pageable_upload,round_trip,constant_upload",
                        "--gpu-metrics", "off")
    assert meta["planted"] == {"pageable_upload": 1, "round_trip": 1, "constant_upload": 1}
    for copies in iteration_copies(out / "trace.sqlite"):
        kinds = [c[0] for c in copies]
        assert kinds.count(1) == 3 and kinds.count(2) == 2
        assert all(c[1] == 0 for c in copies if c[0] == 1)  # H2D from pageable memory


@needs_nsys
def test_emit_nvtx_and_transformer(tmp_path):
    out, meta = capture(tmp_path, "--model", "transformer", "--d-model", "256", "--layers", "2", "--precision",
                        "fp16", "--batch", "2", "--iterations", "3", "--warmup", "1", "--layer-ranges", "emit_nvtx",
                        "--gpu-metrics", "off")
    assert meta["layer_ranges"] == "emit_nvtx" and meta["options"]["nhead"] == 8


def _workload(**kw):
    from profiler.capture.config import CaptureConfig
    from profiler.capture.harness import Workload

    cfg = CaptureConfig(batch=2, iterations=3, warmup=2, **kw).validate()
    return Workload(cfg, profiled=False, artifacts_dir=None).run()


@needs_cuda
def test_cuda_graphs_channels_last_amp():
    r = _workload(model="resnet18", precision="amp", channels_last=True, cuda_graphs=True)
    assert r["layer_ranges"] == "none" and "CUDA graph" in r["layer_ranges_reason"]
    assert r["latency_ms"]["iteration"]["n"] == 3 and r["timing"] == "cuda_events"


@needs_cuda
def test_gpu_preprocess_and_detection():
    r = _workload(model="tiny_yolo", precision="fp16", preprocess_device="cuda")
    assert r["task"] == "detection" and r["copies_per_iteration"] is None


@needs_cuda
def test_overhead_measurement():
    r = _workload(model="resnet18", precision="fp16", overhead_iterations=10)
    ov = r["overhead"]
    assert ov["iterations_each"] == 10 and ov["on_ms"]["iteration"]["n"] == 10


@needs_cuda
def test_onnx_through_torch(tmp_path):
    pytest.importorskip("onnx2torch")
    import torch

    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                            torch.nn.Flatten(), torch.nn.Linear(8, 10)).eval()
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(m, (torch.randn(1, 3, 64, 64),), str(path), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    r = _workload(model=str(path), precision="fp16")
    assert r["model_info"]["model_source"] == "onnx2torch" and r["input"]["per_sample_shape"] == [3, 64, 64]
    assert r["leaf_modules"] >= 4


@needs_cuda
def test_tensorrt_backend_if_installed(tmp_path):
    pytest.importorskip("tensorrt")
    import torch

    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                            torch.nn.Linear(8 * 32 * 32, 10)).eval()
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(m, (torch.randn(2, 3, 32, 32),), str(path), input_names=["input"], dynamo=False)
    r = _workload(backend="tensorrt", model=str(path), precision="fp16", engine_cache=str(tmp_path / "cache"))
    assert r["layer_ranges"] == "tensorrt"
