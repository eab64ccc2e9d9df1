"""A small CUDA program whose copies are wrong on purpose, for the memory-copy rules that our PyTorch harness never
triggers (PyTorch only issues async copies): synchronous memcpys, synchronous memsets of managed memory and many
tiny copies. Run it under Nsight Systems on a GPU machine (CuPy and the `nvtx` package needed):

    nsys profile -t cuda,nvtx -s none --cpuctxsw=none --export sqlite -o sync_copies \\
        python3 tools/capture_sync_copies.py

Per measured iteration (ranges `iteration_<i>` / `preprocess` / `inference` / `postprocess`, domain `trtscope`):
- preprocess: one synchronous `cudaMemcpy` Host-to-Device of 1 MiB from pageable memory (sync_memcpy), then
  TINY (8) `cudaMemcpyAsync` Host-to-Device copies of 64 B from pinned memory (tiny_copies);
- inference: a matmul, and a synchronous `cudaMemset` of 1 MiB of managed memory (sync_memset);
- postprocess: one synchronous `cudaMemcpy` Device-to-Host of 4 KiB into pageable memory (sync_memcpy).
WARMUP iterations run first outside any range.
"""

from __future__ import annotations

import cupy as cp
import numpy as np
import nvtx

ITERATIONS, WARMUP, TINY = 10, 3, 8
MiB = 1 << 20
rt = cp.cuda.runtime


def iteration(pageable_in, pinned_small, managed, dev_in, dev_small, a, b, out_host):
    with nvtx.annotate("preprocess", domain="trtscope"):
        rt.memcpy(dev_in.data.ptr, pageable_in.ctypes.data, pageable_in.nbytes, rt.memcpyHostToDevice)
        stream = cp.cuda.get_current_stream().ptr
        for k in range(TINY):
            rt.memcpyAsync(dev_small.data.ptr + 64 * k, pinned_small.ptr + 64 * k, 64, rt.memcpyHostToDevice, stream)
    with nvtx.annotate("inference", domain="trtscope"):
        c = a @ b
        rt.memset(managed.ptr, 0, MiB)
    with nvtx.annotate("postprocess", domain="trtscope"):
        rt.memcpy(out_host.ctypes.data, c.data.ptr, out_host.nbytes, rt.memcpyDeviceToHost)


def main() -> None:
    pageable_in = np.random.rand(MiB // 4).astype(np.float32)
    pinned_small = cp.cuda.alloc_pinned_memory(64 * TINY)
    managed = cp.cuda.malloc_managed(MiB)
    dev_in = cp.empty(MiB // 4, dtype=cp.float32)
    dev_small = cp.empty(16 * TINY, dtype=cp.float32)
    a = cp.random.rand(512, 512, dtype=cp.float32)
    b = cp.random.rand(512, 512, dtype=cp.float32)
    out_host = np.empty(1024, dtype=np.float32)  # 4 KiB of the 512 x 512 result
    for _ in range(WARMUP):
        iteration(pageable_in, pinned_small, managed, dev_in, dev_small, a, b, out_host)
    cp.cuda.Device().synchronize()
    for i in range(ITERATIONS):
        with nvtx.annotate(f"iteration_{i}", domain="trtscope"):
            iteration(pageable_in, pinned_small, managed, dev_in, dev_small, a, b, out_host)
    cp.cuda.Device().synchronize()


if __name__ == "__main__":
    main()
