"""What the harness needs from a backend: a loaded model it can prepare, run, and describe."""

from __future__ import annotations

from typing import Optional


class LoadedModel:
    backend = "?"
    task = "classification"
    model_dtype = None  # torch dtype the input is cast to (None: leave it)
    input_spec = None  # profiler.capture.pipeline.InputSpec
    layer_ranges = "none"  # effective per-layer range mode: leaf | none | emit_nvtx | tensorrt
    layer_ranges_reason: Optional[str] = None
    leaf_modules: dict = {}
    module_records: list = []
    info: dict = {}

    def prepare(self, example, artifacts_dir: Optional[str] = None) -> None:
        """One-off work before warm-up (shape recording, graph capture, engine build...)."""

    def run(self, x):
        raise NotImplementedError

    def autocast(self):
        import contextlib

        return contextlib.nullcontext()

    def artifacts(self) -> dict:
        """{file name: JSON-able object} written into the run directory."""
        return {}


def load_backend(cfg, device: str) -> LoadedModel:
    if cfg.backend == "torch":
        from profiler.backends.torch_backend import load

        return load(cfg, device)
    if cfg.backend == "tensorrt":
        from profiler.backends.tensorrt_backend import load

        return load(cfg, device)
    from profiler.errors import CaptureError

    raise CaptureError(f"unknown backend {cfg.backend!r}")
