"""`python -m profiler run` failures: one `error:` line, exit 2, no half-written run directory. Runs on CPU with a
fake nsys (tests/test_capture_fakes.py); tests that run the workload need torch (+ torchvision) and skip without."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_capture_fakes import install_fake_nsys

REPO = Path(__file__).resolve().parents[1]
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_TV = HAVE_TORCH and importlib.util.find_spec("torchvision") is not None


def run(args, tmp_path, env_extra=None, timeout=600):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NSYS", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "profiler", "run"] + args, capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=timeout)


def error_line(proc):
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr
    return lines[-1]


def leftovers(folder: Path):
    return [p.name for p in folder.iterdir()] if folder.exists() else []


def test_no_nsys(tmp_path):
    p = run(["--model", "resnet18", "--out", str(tmp_path / "runs/x")], tmp_path,
            {"NSYS": str(tmp_path / "missing-nsys")})
    assert p.returncode == 2
    assert "not an executable nsys" in error_line(p)
    assert leftovers(tmp_path / "runs") == []


def test_no_nsys_anywhere_says_how_to_install(tmp_path, monkeypatch):
    from profiler.capture.runner import run_capture
    from profiler.capture.config import CaptureConfig
    from profiler.errors import CaptureError
    from profiler.trace import nsys_binary
    import profiler.capture.runner as runner

    monkeypatch.setattr(runner, "find_nsys", lambda: None)
    monkeypatch.delenv("NSYS", raising=False)
    with pytest.raises(CaptureError, match="install it"):
        run_capture(CaptureConfig(out=str(tmp_path / "x")), ["run"], quiet=True)
    assert not (tmp_path / "x").exists()


def test_missing_model_file(tmp_path):
    p = run(["--model", "nope/model.onnx"], tmp_path)
    assert p.returncode == 2 and "model file not found: nope/model.onnx" in error_line(p)


def test_not_onnx(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"PK\x03\x04 this is a zip, not ONNX" * 20)
    p = run(["--backend", "tensorrt", "--model", "bad.onnx"], tmp_path)
    assert p.returncode == 2 and "is not an ONNX model" in error_line(p)


def test_bad_option_one_line(tmp_path):
    p = run(["--model", "resnet18", "--precision", "int8"], tmp_path)
    assert p.returncode == 2 and "needs --backend tensorrt" in error_line(p)


def test_existing_run_dir(tmp_path):
    (tmp_path / "runs/x").mkdir(parents=True)
    p = run(["--model", "resnet18", "--out", "runs/x"], tmp_path)
    assert p.returncode == 2 and "already exists" in error_line(p)


@pytest.mark.skipif(not HAVE_TORCH, reason="needs torch")
def test_no_gpu_is_one_line(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    nsys = install_fake_nsys(tmp_path)
    p = run(["--model", "resnet18", "--batch", "1", "--iterations", "1", "--warmup", "0", "--out", "runs/x"],
            tmp_path, {"NSYS": str(nsys)})
    assert p.returncode == 2
    assert error_line(p) == "error: no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)"
    assert leftovers(tmp_path / "runs") == []


@pytest.mark.skipif(not HAVE_TORCH, reason="needs torch")
def test_workload_crash_shows_stderr_tail(tmp_path):
    (tmp_path / "crashmod.py").write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        if not torch.jit.is_scripting() and x.shape[0] and getattr(self, 'armed', False):\n"
        "            raise RuntimeError('planted failure in forward')\n"
        "        return x.flatten(1)[:, :10]\n"
        "def build():\n"
        "    m = M(); m.armed = True; return m\n")
    nsys = install_fake_nsys(tmp_path)
    p = run(["--model", "crashmod:build", "--input-shape", "4", "--batch", "1", "--iterations", "1", "--warmup", "0",
             "--out", "runs/x", "--device", "cpu"], tmp_path,
            {"NSYS": str(nsys), "TRTSCOPE_ALLOW_CPU_CAPTURE": "1"})
    assert p.returncode == 2
    line = error_line(p)
    assert "the workload failed (exit 4): RuntimeError: planted failure in forward" in line
    tail = p.stderr.split("--- last lines of the workload's output ---", 1)[1]
    assert "crashmod.py" in tail and "RuntimeError: planted failure in forward" in tail
    assert leftovers(tmp_path / "runs") == []


@pytest.mark.skipif(not HAVE_TORCH, reason="needs torch")
def test_nsys_writes_no_report(tmp_path):
    nsys = install_fake_nsys(tmp_path)
    (tmp_path / "tiny.py").write_text("import torch\ndef build():\n    return torch.nn.Linear(4, 3)\n")
    p = run(["--model", "tiny:build", "--input-shape", "4", "--batch", "2", "--iterations", "2", "--warmup", "1",
             "--out", "runs/x", "--device", "cpu"], tmp_path,
            {"NSYS": str(nsys), "TRTSCOPE_ALLOW_CPU_CAPTURE": "1", "FAKE_NSYS_NO_REPORT": "1"})
    assert p.returncode == 2 and "nsys wrote no report" in error_line(p)
    assert leftovers(tmp_path / "runs") == []
    p = run(["--model", "tiny:build", "--input-shape", "4", "--batch", "2", "--iterations", "2", "--warmup", "1",
             "--out", "runs/x", "--device", "cpu"], tmp_path,
            {"NSYS": str(nsys), "TRTSCOPE_ALLOW_CPU_CAPTURE": "1", "FAKE_NSYS_NO_RANGES": "1"})
    assert p.returncode == 2 and "no iteration_<i> NVTX ranges" in error_line(p)
    assert leftovers(tmp_path / "runs") == []


@pytest.mark.skipif(not HAVE_TV, reason="needs torch and torchvision")
def test_cpu_run_directory_layout(tmp_path):
    """The whole runner on the CPU through the fake nsys: files, metadata keys, command, atomic rename."""
    nsys = install_fake_nsys(tmp_path)
    args = ["--model", "resnet18", "--batch", "1", "--iterations", "2", "--warmup", "1", "--image-size", "64",
            "--out", "runs/r18", "--device", "cpu", "--plant", "round_trip"]
    p = run(args, tmp_path, {"NSYS": str(nsys), "TRTSCOPE_ALLOW_CPU_CAPTURE": "1"})
    assert p.returncode == 0, p.stderr
    run_dir = tmp_path / "runs/r18"
    assert leftovers(tmp_path / "runs") == ["r18"]
    for f in ("trace.sqlite", "metadata.json", "summary.json", "modules.json", "command.txt"):
        assert (run_dir / f).is_file(), f
    meta = json.loads((run_dir / "metadata.json").read_text())
    for key in ("name", "created", "backend", "model", "precision", "batch", "iterations", "warmup", "pinned",
                "layer_ranges", "planted", "command", "argv", "versions", "gpu", "latency_ms",
                "profiled_latency_ms", "nvtx_domain"):
        assert key in meta, key
    assert meta["command"] == "python -m profiler " + " ".join(["run"] + args)
    assert (run_dir / "command.txt").read_text().strip() == meta["command"]
    assert meta["planted"] == {"round_trip": 1} and meta["nvtx_domain"] == "trtscope"
    assert meta["layer_ranges"] == "leaf" and meta["versions"]["nsys"].endswith("fake")
    for stage in ("preprocess", "inference", "postprocess", "iteration"):
        assert set(meta["latency_ms"][stage]) >= {"median", "p90", "mean", "n"}
        assert meta["latency_ms"][stage]["n"] == 2
    mods = json.loads((run_dir / "modules.json").read_text())
    assert mods[0]["name"] == "conv1" and mods[0]["type"] == "Conv2d" and mods[0]["out_channels"] == 64
    assert mods[0]["input_shapes"] == [[1, 3, 64, 64]]
    assert str(tmp_path / "runs") + "/." not in json.dumps(meta["nsys"]["command"])  # no temp paths recorded
