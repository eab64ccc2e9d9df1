"""Shared helpers for the model-analysis tests: models exported once per test process.

Not a pytest conftest (tests/conftest.py belongs to the suite as a whole): test modules
import these helpers from their own session-scoped fixtures.  Exports use random
weights (``weights=None``) and the TorchScript-based exporter; nothing is downloaded.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import pytest

_EXPORT_DIR = Path(tempfile.mkdtemp(prefix="trtscope-model-tests-"))
atexit.register(shutil.rmtree, _EXPORT_DIR, ignore_errors=True)

#: The small transformer exported by :func:`transformer_onnx` (and built by :func:`small_transformer`).
TRANSFORMER = {"layers": 2, "d_model": 64, "heads": 4, "ffn": 128, "seq": 16, "batch": 2}


def _torch():
    return pytest.importorskip("torch")


def _export(module, example, path: Path, **kwargs) -> Path:
    torch = _torch()
    with warnings.catch_warnings():  # grad stays on: no fused fast paths in the traced graph
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), dynamo=False, opset_version=17, **kwargs)
    return path


@lru_cache(maxsize=None)
def torchvision_onnx(name: str) -> Path:
    """``resnet50`` / ``mobilenet_v2`` from torchvision, random weights, 1x3x224x224."""
    torch = _torch()
    torchvision = pytest.importorskip("torchvision")
    model = getattr(torchvision.models, name)(weights=None).eval()
    return _export(model, torch.randn(1, 3, 224, 224), _EXPORT_DIR / f"{name}.onnx")


def small_transformer():
    """A 2-layer nn.TransformerEncoder (d_model 64, 4 heads, FFN 128), batch-first, eval mode."""
    torch = _torch()
    t = TRANSFORMER
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(t["d_model"], t["heads"], t["ffn"], dropout=0.0, batch_first=True)
    return torch.nn.TransformerEncoder(layer, t["layers"], enable_nested_tensor=False).eval()


@lru_cache(maxsize=None)
def transformer_onnx() -> Path:
    torch = _torch()
    t = TRANSFORMER
    return _export(small_transformer(), torch.randn(t["batch"], t["seq"], t["d_model"]),
                   _EXPORT_DIR / "transformer.onnx")


@lru_cache(maxsize=None)
def dynamic_batch_onnx() -> Path:
    """A tiny conv net exported with a dynamic batch dim (no value in the model)."""
    torch = _torch()
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    return _export(net, torch.randn(1, 3, 32, 32), _EXPORT_DIR / "dynamic.onnx",
                   input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def module_records(model, example) -> list[dict]:
    """modules.json records for the leaf modules ``model`` runs on ``example``, made by the
    capture code itself (profiler.capture.nvtx_ranges + profiler.backends.torch_backend)."""
    _torch()
    from profiler.backends.torch_backend import module_records as records_of
    from profiler.capture.nvtx_ranges import executed_leaf_modules

    leaves, calls = executed_leaf_modules(model, lambda: model(example))
    return records_of(leaves, calls)
