"""Latency statistics in the shape metadata.json uses: {stage: {median, p90, mean, min, max, n}} in milliseconds."""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

STAGES = ("preprocess", "inference", "postprocess", "iteration")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]."""
    if not values:
        return math.nan
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def describe(values: Iterable[float]) -> dict:
    xs = [float(v) for v in values]
    if not xs:
        return {"median": None, "p90": None, "mean": None, "min": None, "max": None, "n": 0}
    return {
        "median": round(percentile(xs, 50), 6),
        "p90": round(percentile(xs, 90), 6),
        "mean": round(sum(xs) / len(xs), 6),
        "min": round(min(xs), 6),
        "max": round(max(xs), 6),
        "n": len(xs),
    }


def describe_stages(per_stage: Mapping[str, Sequence[float]]) -> dict:
    """{stage: [ms, ...]} -> {stage: describe(...)} for the stages we know, in a fixed order."""
    out = {s: describe(per_stage.get(s, ())) for s in STAGES}
    for k, v in per_stage.items():
        if k not in out:
            out[k] = describe(v)
    return out


def overhead_percent(on: Sequence[float], off: Sequence[float]) -> float | None:
    """(median(on) - median(off)) / median(off) * 100."""
    if not on or not off:
        return None
    m_off = percentile(off, 50)
    if m_off <= 0:
        return None
    return round((percentile(on, 50) - m_off) / m_off * 100.0, 3)
