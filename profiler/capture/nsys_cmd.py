"""The `nsys` command lines a capture runs (pure functions, unit-tested without nsys)."""

from __future__ import annotations

import re
import subprocess
from typing import Optional, Sequence

TRACE_APIS = "cuda,nvtx,cublas,cudnn"


def profile_command(nsys: str, out_prefix: str, workload: Sequence[str], *, gpu_metrics: bool = True,
                    gpu_metrics_frequency: int = 1000, metrics_flag: str = "--gpu-metrics-devices",
                    capture_range: bool = True) -> list[str]:
    """`nsys profile` with trtscope's defaults: CUDA/NVTX/cuBLAS/cuDNN tracing, CUDA memory usage, no CPU sampling
    or context switches, capture range = cudaProfilerStart..Stop (the harness brackets the measured iterations,
    so warm-up is skipped), SQLite export next to the report, GPU metrics at `gpu_metrics_frequency` Hz."""
    cmd = [nsys, "profile", f"--trace={TRACE_APIS}", "--sample=none", "--cpuctxsw=none",
           "--cuda-memory-usage=true"]
    if capture_range:
        cmd += ["--capture-range=cudaProfilerApi", "--capture-range-end=stop"]
    if gpu_metrics:
        value = "all" if metrics_flag.endswith("devices") else "0"
        cmd += [f"{metrics_flag}={value}", f"--gpu-metrics-frequency={int(gpu_metrics_frequency)}"]
    cmd += ["--export=sqlite", "--force-overwrite=true", "--stats=false", f"--output={out_prefix}"]
    return cmd + list(workload)


def export_command(nsys: str, report: str, sqlite_path: str) -> list[str]:
    return [nsys, "export", "--type=sqlite", "--force-overwrite=true", f"--output={sqlite_path}", report]


def stats_command(nsys: str, report: str, prefix: str,
                  reports: str = "cuda_gpu_kern_sum,cuda_gpu_mem_time_sum,cuda_gpu_mem_size_sum,nvtx_sum,"
                                 "nvtx_gpu_proj_sum,cuda_api_sum") -> list[str]:
    return [nsys, "stats", "-r", reports, "--format", "csv", "-o", prefix, report]


def metrics_flag_from_help(help_text: str) -> Optional[str]:
    """Which GPU-metrics option this nsys has: '--gpu-metrics-devices' (2023.3 and newer), '--gpu-metrics-device'
    (older), or None when `nsys profile --help` mentions neither."""
    if re.search(r"--gpu-metrics-devices\b", help_text):
        return "--gpu-metrics-devices"
    if re.search(r"--gpu-metrics-device\b", help_text):
        return "--gpu-metrics-device"
    return None


def probe_metrics_flag(nsys: str) -> Optional[str]:
    try:
        out = subprocess.run([nsys, "profile", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return metrics_flag_from_help((out.stdout or "") + (out.stderr or ""))


def looks_like_metrics_failure(text: str) -> bool:
    """nsys output that says GPU metrics could not be collected (unsupported GPU, no permission, ...)."""
    t = text.lower()
    return ("gpu metric" in t or "gpu-metrics" in t) and any(
        w in t for w in ("not supported", "unsupported", "fail", "error", "permission", "insufficient", "unable"))
