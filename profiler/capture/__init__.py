"""Capturing inference workloads under Nsight Systems: `python -m profiler run ...` (see docs/capture.md)."""

from profiler.capture.config import NVTX_DOMAIN, CaptureConfig

__all__ = ["CaptureConfig", "NVTX_DOMAIN"]
