"""Reading Nsight Systems exports: `open_trace(path)` gives a `Trace` whose attributes are pandas frames."""

from profiler.trace.tables import Trace, open_trace

__all__ = ["Trace", "open_trace"]
