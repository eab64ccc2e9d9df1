"""GPU ceilings from data/gpu_specs.csv: datasheet peaks per precision, bandwidth, measured values.

Table units: TFLOPS / TOPS (1e12 operations per second, dense unless the column
says sparse), GB/s (1e9 bytes per second), MHz, GB.  The ``match`` column is a
regular expression tried, in file order, against the lower-cased device name a
trace reports (e.g. "NVIDIA H100 80GB HBM3"); the first match wins.
``measured_*`` columns, where filled, can replace the datasheet ceilings
(``use_measured=True``; ``measured_how`` says how they were taken). Datasheet
ceilings are the default: a measured DRAM roof sits below layers whose data
stays in L2, and the table has no L2 roof yet.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

GPU_SPECS_CSV = Path(__file__).resolve().parents[2] / "data" / "gpu_specs.csv"

#: Tensor-Core column per precision (dense); FP32 work runs as TF32 on Tensor Cores
#: when the engine allows it (TensorRT's default on Ampere and later).
TENSOR_COLUMN = {"fp16": "fp16_tflops", "bf16": "bf16_tflops", "tf32": "tf32_tflops",
                 "fp32": "tf32_tflops", "int8": "int8_tops", "fp8": "fp8_tflops", "fp64": "fp64_tensor_tflops"}
#: CUDA-core (non-tensor) column per precision.  INT8/FP8 layers that miss the
#: Tensor Cores fall back to FP16/FP32 kernels, so they use the FP16 vector rate.
CUDA_CORE_COLUMN = {"fp16": "fp16_nontensor_tflops", "bf16": "fp16_nontensor_tflops", "tf32": "fp32_tflops",
                    "fp32": "fp32_tflops", "int8": "fp16_nontensor_tflops", "fp8": "fp16_nontensor_tflops",
                    "fp64": "fp64_tflops"}
#: Measured tensor-roof column per precision (a large cuBLAS GEMM at that precision).
MEASURED_COLUMN = {"fp16": "measured_fp16_tflops", "bf16": "measured_bf16_tflops",
                   "fp32": "measured_tf32_tflops", "tf32": "measured_tf32_tflops", "int8": "measured_int8_tops"}
#: Measured CUDA-core roof column per precision (FP32 GEMM with TF32 off).
MEASURED_CUDA_CORE_COLUMN = {"fp32": "measured_fp32_tflops", "tf32": "measured_fp32_tflops"}
MEASURED_COLUMNS = ["measured_fp16_tflops", "measured_bf16_tflops", "measured_tf32_tflops", "measured_fp32_tflops",
                    "measured_int8_tops", "measured_bandwidth_gbs"]


@lru_cache(maxsize=4)
def _load(path: str) -> pd.DataFrame:
    table = pd.read_csv(path)
    table["measured"] = table[MEASURED_COLUMNS].notna().any(axis=1)
    return table


def gpu_table(path: str | Path | None = None) -> pd.DataFrame:
    """The GPU table (a copy), with a boolean ``measured`` column added."""
    return _load(str(path or GPU_SPECS_CSV)).copy()


def normalize_device_name(name: str) -> str:
    """Lower-case, 'NVIDIA'/'GeForce'/'Tesla' dropped, '-' and '_' as spaces."""
    text = re.sub(r"[-_/]+", " ", str(name).lower())
    text = re.sub(r"\b(nvidia|geforce|tesla|corporation)\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def match_gpu(name: str, table: pd.DataFrame | None = None, *, sm_count: int | None = None) -> dict | None:
    """The table row (as a dict) for a device name such as "NVIDIA H100 80GB HBM3", or None.

    Exact ``gpu`` names (case-insensitive) win; otherwise the first row whose ``match``
    pattern is found in the normalized name.  ``sm_count`` (from the trace's device
    info) rejects rows with another SM count, e.g. an Orin NX reported as "Orin".
    """
    table = gpu_table() if table is None else table
    if not name or not str(name).strip():
        return None
    if sm_count is not None:
        table = table[table["sm_count"].isna() | (table["sm_count"] == int(sm_count))]
    exact = table[table["gpu"].str.lower() == str(name).strip().lower()]
    if len(exact):
        return _row(exact.iloc[0])
    text = normalize_device_name(name)
    for _, row in table.iterrows():
        if re.search(str(row["match"]), text):
            return _row(row)
    return None


def _row(row: pd.Series) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.to_dict().items()}


def _value(gpu: dict, column: str | None) -> float | None:
    if column is None:
        return None
    value = gpu.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def peak_flops(gpu: dict, precision: str = "fp16", *, tensor: bool = True, sparse: bool = False,
               use_measured: bool = False) -> float | None:
    """Peak rate in FLOP/s (or OP/s for INT8) for a precision, on Tensor Cores or CUDA cores.

    With ``use_measured``, measured values replace the datasheet dense rate where the table has them.
    None where the GPU has no such rate (e.g. FP8 on Ampere).
    """
    precision = precision.lower()
    if tensor:
        if use_measured and not sparse:
            measured = _value(gpu, MEASURED_COLUMN.get(precision))
            if measured is not None:
                return measured * 1e12
        column = TENSOR_COLUMN.get(precision)
        if sparse and column:
            column = column.replace("_tflops", "_sparse_tflops").replace("_tops", "_sparse_tops")
    else:
        if use_measured:
            measured = _value(gpu, MEASURED_CUDA_CORE_COLUMN.get(precision))
            if measured is not None:
                return measured * 1e12
        column = CUDA_CORE_COLUMN.get(precision)
        if column == "fp16_nontensor_tflops" and _value(gpu, column) is None:
            column = "fp32_tflops"  # unknown FP16 vector rate: fall back to FP32
    value = _value(gpu, column)
    return None if value is None else value * 1e12


def memory_bandwidth(gpu: dict, *, use_measured: bool = False) -> float:
    """DRAM bandwidth in bytes/s (the measured one when ``use_measured`` and the table has it)."""
    measured = _value(gpu, "measured_bandwidth_gbs") if use_measured else None
    value = measured if measured is not None else _value(gpu, "memory_bandwidth_gbs")
    return math.nan if value is None else value * 1e9
