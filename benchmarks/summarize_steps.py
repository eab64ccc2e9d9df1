"""Time each step of `summarize` on one trace (wall seconds per step), to see where the time goes.

    PYTHONPATH=. python3 benchmarks/summarize_steps.py TRACE
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from profiler.analysis import copies, kernels, layers, memory, ranges, stages, summary  # noqa: E402
from profiler.trace import open_trace  # noqa: E402


def step(name: str, fn):
    t0 = time.perf_counter()
    out = fn()
    print(f"{name:22s} {time.perf_counter() - t0:6.2f} s")
    return out


def main() -> None:
    t0 = time.perf_counter()
    trace = open_trace(sys.argv[1])
    for table in ("kernels", "memcpy", "memset", "api", "nvtx", "gpu_ops"):
        step(f"read {table}", lambda: getattr(trace, table))
    nvtx = trace.nvtx
    projected = step("project ops", lambda: ranges.project_gpu_ops(nvtx, trace.gpu_ops, trace.api))
    projected["tensor_core"] = False
    pairs = step("ancestor pairs", lambda: ranges.range_op_pairs(nvtx, projected))
    stats = step("range gpu stats", lambda: ranges.range_gpu_stats(nvtx, projected, projected["tensor_core"], pairs))
    step("stage table", lambda: stages.stage_table(nvtx, stats))
    step("layer table", lambda: layers.layer_table(nvtx, projected, pairs, stats))
    step("kernel summary", lambda: kernels.kernel_summary(trace.kernels))
    step("memory summary", lambda: memory.memory_summary(trace.memcpy, trace.memset))
    step("nvtx summary", lambda: ranges.nvtx_summary(nvtx))
    analysis = step("analyze (cached reads)", lambda: summary.analyze(trace))
    step("copy findings", lambda: copies.copy_findings(analysis))
    print(f"{'total':22s} {time.perf_counter() - t0:6.2f} s")


if __name__ == "__main__":
    main()
