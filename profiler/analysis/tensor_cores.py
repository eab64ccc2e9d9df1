"""Tensor-Core usage: share of GPU time in Tensor-Core kernels, and the measured 'Tensor Active' signal."""

from __future__ import annotations

import numpy as np
import pandas as pd

TENSOR_ACTIVE = "Tensor Active [Throughput %]"


def metric_in_windows(samples: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean sample value (e.g. Tensor Active %) within each [start, end] window (ns); NaN where no sample.

    GPU metrics are sampled at a fixed rate (1 kHz in our captures): windows shorter than the sampling
    period often hold no sample and get NaN rather than a made-up value.
    """
    if samples.empty or len(starts) == 0:
        return np.full(len(starts), np.nan)
    s = samples.sort_values("timestamp")
    t = s["timestamp"].to_numpy()
    csum = np.r_[0.0, np.cumsum(s["value"].to_numpy(dtype=float))]
    lo = np.searchsorted(t, np.asarray(starts), side="left")
    hi = np.searchsorted(t, np.asarray(ends), side="right")
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (csum[hi] - csum[lo]) / np.maximum(n, 1), np.nan)


def tensor_active_over_time(samples: pd.DataFrame, t0: int | None = None) -> pd.DataFrame:
    """Tensor Active samples as a time series: time_ms since t0 (default: first sample), value (%)."""
    if samples.empty:
        return pd.DataFrame(columns=["time_ms", "value"])
    t0 = samples["timestamp"].min() if t0 is None else t0
    return pd.DataFrame({"time_ms": (samples["timestamp"] - t0) / 1e6, "value": samples["value"]})


def tensor_core_share(kernels: pd.DataFrame, tensor_core: pd.Series) -> float:
    """Share (0..1) of kernel time spent in Tensor-Core kernels."""
    total = kernels["duration_ns"].sum()
    return float(kernels.loc[tensor_core.to_numpy(), "duration_ns"].sum() / total) if total else 0.0


def layers_missing_tensor_cores(layers: pd.DataFrame, threshold: float = 0.5) -> pd.DataFrame:
    """Layers whose Tensor-Core share of kernel time is below `threshold`, biggest GPU time first."""
    if layers.empty:
        return layers
    miss = layers[layers["tensor_core_share"] < threshold]
    return miss.sort_values("gpu_ns", ascending=False).reset_index(drop=True)
