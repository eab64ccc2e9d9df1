"""Kernel tables: per-name summary (as `nsys stats -r cuda_gpu_kern_sum`) and Tensor-Core classification."""

from __future__ import annotations

import re

import pandas as pd

# A kernel runs Tensor-Core math when its name says it issues MMA instructions. Patterns, and why:
# - hmma/imma/gmma/wgmma/qgmma/xmma: the MMA instruction families (Volta..Hopper) that NVIDIA libraries
#   (cuDNN, cuBLAS, TensorRT) put in kernel names, e.g. `sm90_xmma_gemm_f16f16_...`, `sm80_xmma_fprop_...`.
# - h884/h1688/h16816/s1688/s16816/i8816/i16832/...: MMA tile shapes in cuBLAS/CUTLASS names
#   (`ampere_h16816gemm_...`, `cutlass_80_tensorop_f16_s16816gemm_...`); `tensorop` is CUTLASS's tag.
# - nvjet: cuBLAS's Hopper/Blackwell JIT GEMMs, which are built on wgmma.
# - flash/fmha: FlashAttention and fused multi-head attention kernels, which are MMA-based.
# Excluded: SIMT kernels (`simt`, `sgemm`, `dgemm`, `gemv`) and xmma kernels computing in plain FP32
# (`f32f32_f32f32` without tf32), which use CUDA cores. Elementwise kernels that issue HFMA2.MMA on the
# tensor pipe (see NOTES.md) have no such names and are correctly left out.
TENSOR_CORE_PATTERN = re.compile(
    r"hmma|imma|wgmma|qgmma|gmma|xmma|tensorop|nvjet|flash_fwd|flash_bwd|flash::|fmha|"
    r"(?<![a-z])[hsi]\d{3,5}(?:gemm|cudnn|conv)|_[hsi](?:884|1688|16816|8816|16832|16864)",
    re.IGNORECASE,
)
CUDA_CORE_PATTERN = re.compile(r"simt|sgemm|dgemm|gemv|f32f32_f32f32_f32(?!.*tf32)", re.IGNORECASE)


def is_tensor_core_kernel(name: str) -> bool:
    """True if a kernel's (demangled) name marks it as Tensor-Core math (see TENSOR_CORE_PATTERN)."""
    return bool(TENSOR_CORE_PATTERN.search(name)) and not CUDA_CORE_PATTERN.search(name)


def tensor_core_flags(names: pd.Series) -> pd.Series:
    """is_tensor_core_kernel for a Series of names; classifies each distinct name once."""
    cat = names.astype("category")
    flags = {c: is_tensor_core_kernel(str(c)) for c in cat.cat.categories}
    return cat.map(flags).astype(bool)


def kernel_summary(kernels: pd.DataFrame) -> pd.DataFrame:
    """One row per demangled kernel name: instances, total/avg/med/min/max/std ns, time share, tensor_core.

    Sorted by total time, descending, as nsys's cuda_gpu_kern_sum; std is the sample standard deviation.
    """
    cols = ["name", "instances", "total_ns", "avg_ns", "med_ns", "min_ns", "max_ns", "std_ns", "time_pct",
            "tensor_core"]
    if kernels.empty:
        return pd.DataFrame(columns=cols)
    g = kernels.groupby("name", observed=True, sort=False)["duration_ns"]
    out = g.agg(instances="size", total_ns="sum", avg_ns="mean", med_ns="median", min_ns="min", max_ns="max",
                std_ns="std").reset_index()
    out["std_ns"] = out["std_ns"].fillna(0.0)
    out["time_pct"] = 100.0 * out["total_ns"] / out["total_ns"].sum()
    out["name"] = out["name"].astype(str)
    out["tensor_core"] = out["name"].map(is_tensor_core_kernel)
    return out.sort_values(["total_ns", "name"], ascending=[False, True], kind="stable").reset_index(drop=True)[cols]
