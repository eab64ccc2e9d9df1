"""Errors that carry a one-line, user-facing reason (no traceback is shown for these)."""


class TraceError(ValueError):
    """An input trace cannot be read: not a file, not SQLite, not an nsys export, truncated, ..."""


class CaptureError(RuntimeError):
    """A capture could not be made: no GPU, no nsys, the workload crashed, a bad model file, ..."""


class ModelError(ValueError):
    """An ONNX model cannot be analysed: not ONNX, truncated, unsafe external data, too big, ..."""
