"""The workload process: `python -m profiler.capture.harness CONFIG.json RESULT.json [--profiled] [--artifacts DIR]`.

Runs warm-up iterations (no NVTX, not timed), then the measured iterations with NVTX ranges and CUDA-event timing
of each stage. Under nsys (`--profiled`) the measured iterations are bracketed by cudaProfilerStart/Stop, which
nsys's `--capture-range=cudaProfilerApi` turns into the capture range, so warm-up is not in the trace.

Writes RESULT.json ({"latency_ms": ..., "wall_ms": ..., "versions": ..., "gpu": ..., ...}) or, on a failure it
can explain, {"error": "<one line>"} with exit status 3.

Per-stage timing: a CUDA event is recorded before `preprocess` and after each stage; iteration i's stage times
are the elapsed times between them (read after the loop, so timing adds no synchronisation). `inference` ends
with torch.cuda.synchronize() (on by default, `--no-sync-after-inference` drops it) so that the model's GPU work
is inside the `inference` range and not counted in `postprocess`; `postprocess` ends with the result's copy to
the host, which waits for the GPU anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
import traceback

from profiler.capture.config import CaptureConfig
from profiler.capture.stats import describe_stages, overhead_percent
from profiler.errors import CaptureError

STAGE_NAMES = ("preprocess", "inference", "postprocess")


class StageTimer:
    """CUDA events (GPU) or perf_counter (CPU) at 4 points per iteration; wall-clock always kept too."""

    def __init__(self, torch, n: int, cuda: bool):
        self.torch = torch
        self.cuda = cuda
        self.n = n
        self.events = [[torch.cuda.Event(enable_timing=True) for _ in range(4)] for _ in range(n)] if cuda else None
        self.wall = [[0.0] * 4 for _ in range(n)]

    def mark(self, i: int, point: int) -> None:
        if self.cuda:
            self.events[i][point].record()
        self.wall[i][point] = time.perf_counter()

    def stage_ms(self) -> tuple[dict, dict]:
        if self.cuda:
            self.torch.cuda.synchronize()
        ev = {s: [] for s in STAGE_NAMES + ("iteration",)}
        wall = {s: [] for s in STAGE_NAMES + ("iteration",)}
        for i in range(self.n):
            w = self.wall[i]
            for k, s in enumerate(STAGE_NAMES):
                wall[s].append((w[k + 1] - w[k]) * 1e3)
            wall["iteration"].append((w[3] - w[0]) * 1e3)
            if self.cuda:
                e = self.events[i]
                for k, s in enumerate(STAGE_NAMES):
                    ev[s].append(e[k].elapsed_time(e[k + 1]))
                ev["iteration"].append(e[0].elapsed_time(e[3]))
        return (ev if self.cuda else wall), wall


class Workload:
    def __init__(self, cfg: CaptureConfig, profiled: bool, artifacts_dir: str | None):
        import torch

        self.torch = torch
        self.cfg = cfg
        self.profiled = profiled
        self.artifacts_dir = artifacts_dir
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise CaptureError("no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)")
        self.cuda = cfg.device == "cuda"
        torch.manual_seed(cfg.seed)
        from profiler.backends import load_backend
        from profiler.capture.nvtx_ranges import LeafRanges, Ranges
        from profiler.capture.pipeline import Pipeline

        t0 = time.perf_counter()
        self.model = load_backend(cfg, cfg.device)
        self.pipeline = Pipeline(self.model.input_spec, cfg.batch, cfg.device, self.model.model_dtype,
                                 task=self.model.task, pinned=cfg.pinned, plant=tuple(cfg.plant),
                                 preprocess_device=cfg.preprocess_device, channels_last=cfg.channels_last,
                                 seed=cfg.seed)
        if hasattr(self.model, "calibration_source"):  # TensorRT INT8: calibrate on real pre-processed batches
            self.model.calibration_source = lambda k: self.pipeline.preprocess(10_000 + k)
        example = self.pipeline.preprocess(0)
        with torch.inference_mode():
            self.model.prepare(example, artifacts_dir)
        self.load_s = time.perf_counter() - t0
        self.ranges = Ranges(cfg.nvtx_domain, enabled=False)
        self.mode = self.model.layer_ranges
        self.leaf = LeafRanges(self.ranges, self.model.leaf_modules) if self.mode == "leaf" else None

    # ---- one iteration -------------------------------------------------------------------------------------------
    def iteration(self, i: int, timer: StageTimer | None, ti: int = 0):
        torch = self.torch
        r = self.ranges
        if timer:
            timer.mark(ti, 0)
        r.push(f"iteration_{i}")
        r.push("preprocess")
        x = self.pipeline.preprocess(i)
        r.pop()
        if timer:
            timer.mark(ti, 1)
        r.push("inference")
        if self.mode == "emit_nvtx" and r.enabled:
            ctx = torch.autograd.profiler.emit_nvtx(record_shapes=True)
        else:
            ctx = contextlib.nullcontext()
        with ctx:
            y = self.model.run(x)
        if self.cuda and self.cfg.sync_after_inference:
            torch.cuda.synchronize()
        r.pop()
        if timer:
            timer.mark(ti, 2)
        r.push("postprocess")
        out = self.pipeline.postprocess(y)
        r.pop()
        r.pop()
        if timer:
            timer.mark(ti, 3)
        return out

    def set_instrumented(self, on: bool) -> None:
        self.ranges.enabled = on
        if self.leaf is not None:
            (self.leaf.install if on else self.leaf.remove)()

    # ---- the run -------------------------------------------------------------------------------------------------
    def run(self) -> dict:
        torch = self.torch
        cfg = self.cfg
        n = cfg.iterations
        with torch.inference_mode():
            t0 = time.perf_counter()
            for i in range(cfg.warmup):
                self.iteration(i, None)
            if self.cuda:
                torch.cuda.synchronize()
            warm_s = time.perf_counter() - t0
            timer = StageTimer(torch, n, self.cuda)
            if self.profiled and self.cuda:
                torch.cuda.profiler.start()  # cudaProfilerStart: nsys's capture range begins here
            # domain + strings registered inside the capture range, before the first measured iteration
            self.ranges.register([f"iteration_{i}" for i in range(n)] + list(STAGE_NAMES))
            self.set_instrumented(True)
            t0 = time.perf_counter()
            for i in range(n):
                self.iteration(i, timer, i)
            if self.cuda:
                torch.cuda.synchronize()
            measure_s = time.perf_counter() - t0
            if self.profiled and self.cuda:
                torch.cuda.profiler.stop()
            self.set_instrumented(False)
            latency, wall = timer.stage_ms()
            overhead = None
            if cfg.overhead_iterations and not self.profiled:
                overhead = self.measure_overhead(cfg.overhead_iterations)
        result = {
            "latency_ms": describe_stages(latency),
            "wall_ms": describe_stages(wall),
            "samples_ms": {k: [round(v, 4) for v in vs] for k, vs in latency.items()},
            "timing": "cuda_events" if self.cuda else "perf_counter",
            "nvtx_recording": self.ranges.recording,
            "seconds": {"load": round(self.load_s, 3), "warmup": round(warm_s, 3), "measured": round(measure_s, 3)},
            "layer_ranges": self.mode,
            "layer_ranges_reason": self.model.layer_ranges_reason,
            "leaf_modules": len(self.model.leaf_modules),
            "task": self.model.task,
            "input": {"kind": self.model.input_spec.kind, "per_sample_shape": list(self.model.input_spec.shape),
                      "dtype": self.model.input_spec.dtype},
            "copies_per_iteration": self.pipeline.copies_per_iteration(),
            "model_info": self.model.info,
            "overhead": overhead,
            "versions": versions(torch),
            "gpu": gpu_info(torch) if self.cuda else None,
        }
        if hasattr(self.model, "num_parameters"):
            result["parameters"] = self.model.num_parameters()
        if self.artifacts_dir:
            if self.model.module_records:
                with open(os.path.join(self.artifacts_dir, "modules.json"), "w") as f:
                    json.dump(self.model.module_records, f, indent=1)
            for fname, obj in self.model.artifacts().items():
                with open(os.path.join(self.artifacts_dir, fname), "w") as f:
                    if isinstance(obj, str):
                        f.write(obj)
                    else:
                        json.dump(obj, f, indent=1)
        return result

    def measure_overhead(self, iterations: int, block: int = 5) -> dict:
        """Harness overhead in the same process: blocks of `block` iterations alternate between instrumented
        (stage ranges + per-layer ranges) and bare (no NVTX call, no hooks); medians of `iterations` each."""
        torch = self.torch
        on = {"iteration": [], "inference": []}
        off = {"iteration": [], "inference": []}
        i = 0
        rounds = max(1, -(-iterations // block))
        for r in range(rounds):
            for state, sink in ((True, on), (False, off)) if r % 2 == 0 else ((False, off), (True, on)):
                self.set_instrumented(state)
                timer = StageTimer(torch, block, self.cuda)
                for k in range(block):
                    self.iteration(i, timer, k)
                    i += 1
                lat, _ = timer.stage_ms()
                sink["iteration"] += lat["iteration"]
                sink["inference"] += lat["inference"]
        self.set_instrumented(False)
        from profiler.capture.stats import describe

        return {
            "iterations_each": len(on["iteration"]),
            "block": block,
            "nvtx_recording": self.ranges.recording,
            "layer_ranges": self.mode,
            "on_ms": {k: describe(v) for k, v in on.items()},
            "off_ms": {k: describe(v) for k, v in off.items()},
            "overhead_pct": {k: overhead_percent(on[k], off[k]) for k in on},
        }


def versions(torch) -> dict:
    v = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda}
    try:
        v["cudnn"] = torch.backends.cudnn.version()
    except Exception:  # noqa: BLE001
        pass
    for mod in ("torchvision", "timm", "onnx", "onnx2torch", "tensorrt", "nvtx", "numpy"):
        m = sys.modules.get(mod)
        if m is None and mod in ("torchvision", "nvtx", "numpy"):
            with contextlib.suppress(Exception):
                m = __import__(mod)
        if m is not None:
            v[mod] = getattr(m, "__version__", None) or _dist_version(mod)
    import profiler

    v["trtscope"] = profiler.__version__
    return v


def _dist_version(name: str):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


def gpu_info(torch) -> dict:
    p = torch.cuda.get_device_properties(0)
    info = {"name": p.name, "compute_capability": f"{p.major}.{p.minor}", "sm_count": p.multi_processor_count,
            "memory_gib": round(p.total_memory / 2**30, 2), "device_count": torch.cuda.device_count()}
    with contextlib.suppress(Exception):
        info["l2_cache_mb"] = round(p.L2_cache_size / 2**20, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m profiler.capture.harness")
    ap.add_argument("config")
    ap.add_argument("result")
    ap.add_argument("--profiled", action="store_true")
    ap.add_argument("--artifacts")
    a = ap.parse_args(argv)
    with open(a.config) as f:
        cfg = CaptureConfig.from_json(f.read())
    try:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise CaptureError("PyTorch is not installed in this Python (pip install torch)")
        result = Workload(cfg, a.profiled, a.artifacts).run()
    except CaptureError as exc:
        _write(a.result, {"error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001 - a crash: the runner shows the stderr tail
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _write(a.result, {"crash": f"{type(exc).__name__}: {first}"[:300]})
        return 4
    _write(a.result, result)
    return 0


def _write(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
