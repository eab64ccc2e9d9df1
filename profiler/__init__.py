"""trtscope profiler: capture inference workloads under Nsight Systems and turn the exports into tables."""

__version__ = "0.1.0"
