"""Inference backends the capture harness drives: `torch` (PyTorch) and `tensorrt` (imported lazily)."""

from profiler.backends.base import LoadedModel, load_backend

__all__ = ["LoadedModel", "load_backend"]
