"""Measure a GPU's practical ceilings: dense GEMM throughput per precision and device-memory bandwidth.

    python benchmarks/measure_ceilings.py > ceilings.json     # on a machine with a CUDA GPU and PyTorch

GEMM: square matmuls (n = 8192) timed with CUDA events, median of 20 after 5 warm-ups; FLOP = 2 n^3.
Copy: a 2 GiB device-to-device copy (read + write = 2 x bytes per copy), median of 20.
These replace datasheet peaks in the roofline when `data/gpu_specs.csv` has measured values for the GPU.
"""

from __future__ import annotations

import json
import statistics

import torch


def time_ms(fn, warmup: int = 5, reps: int = 20) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def gemm_tflops(dtype: torch.dtype, n: int = 8192, tf32: bool = False) -> float:
    torch.backends.cuda.matmul.allow_tf32 = tf32
    x = torch.randn(n, n, device="cuda").to(dtype)
    y = torch.randn(n, n, device="cuda").to(dtype)
    ms = time_ms(lambda: torch.matmul(x, y))
    return 2 * n**3 / (ms / 1e3) / 1e12


def int8_tops(n: int = 8192) -> float:
    x = torch.randint(-8, 8, (n, n), device="cuda", dtype=torch.int8)
    y = torch.randint(-8, 8, (n, n), device="cuda", dtype=torch.int8)
    ms = time_ms(lambda: torch._int_mm(x, y))
    return 2 * n**3 / (ms / 1e3) / 1e12


def copy_gbps(nbytes: int = 2 << 30) -> float:
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src))
    return 2 * nbytes / (ms / 1e3) / 1e9


def main() -> None:
    out = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
           "fp16_dense_tflops": gemm_tflops(torch.float16), "bf16_dense_tflops": gemm_tflops(torch.bfloat16),
           "tf32_dense_tflops": gemm_tflops(torch.float32, tf32=True),
           "fp32_dense_tflops": gemm_tflops(torch.float32, tf32=False), "dram_copy_gbps": copy_gbps()}
    try:
        out["int8_dense_tops"] = int8_tops()
    except RuntimeError as exc:  # _int_mm shape/arch limits
        out["int8_dense_tops"] = None
        out["int8_error"] = str(exc).splitlines()[0]
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
