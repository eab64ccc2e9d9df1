"""TensorRT build settings from trtscope's options: pure functions (no tensorrt import) so they are unit-tested.

TensorRT 10.x: precision by builder flags (weak typing): FP16, BF16, INT8 (with a calibrator, entropy or
min-max, unless the ONNX already has Q/DQ nodes), TF32 on by default (cleared for fp32), SPARSE_WEIGHTS for
2:4 structured sparsity. TensorRT 11.x removed the weak-typing flags and implicit INT8 calibration: networks
are strongly typed, so the ONNX file itself must carry the precision (FP16 weights/casts, or Q/DQ nodes).
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Optional, Sequence

from profiler.errors import CaptureError


def trt_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return 0


def builder_plan(precision: str, sparsity: bool, version: str, flags_available: Iterable[str],
                 has_qdq: bool = False, calibrator: str = "entropy") -> dict:
    """What to set on IBuilderConfig. Returns {'set': [...BuilderFlag names], 'clear': [...], 'calibrator':
    None|'entropy'|'minmax', 'strongly_typed': bool, 'notes': [...]}; raises CaptureError where this
    TensorRT cannot honour the precision."""
    avail = set(flags_available)
    major = trt_major(version)
    plan = {"set": [], "clear": [], "calibrator": None, "strongly_typed": major >= 11, "notes": [],
            "profiling_verbosity": "DETAILED"}

    def need(flag: str, why: str) -> None:
        if flag not in avail:
            if major >= 11:
                raise CaptureError(f"TensorRT {version} builds strongly typed networks only and has no "
                                   f"BuilderFlag.{flag}: {why}")
            raise CaptureError(f"this TensorRT ({version}) has no BuilderFlag.{flag} ({why})")
        plan["set"].append(flag)

    if precision == "fp32":
        if "TF32" in avail:
            plan["clear"].append("TF32")  # TF32 is on by default; fp32 means fp32
    elif precision == "tf32":
        if "TF32" in avail:
            plan["set"].append("TF32")
    elif precision == "fp16":
        need("FP16", "give an FP16 ONNX (e.g. converted with ModelOpt AutoCast) and --precision fp32")
    elif precision == "bf16":
        need("BF16", "give a BF16 ONNX and --precision fp32")
    elif precision in ("int8", "best"):
        if precision == "best":
            need("FP16", "give a mixed-precision ONNX and --precision fp32")
        if has_qdq:
            if major < 11:
                need("INT8", "explicit quantization")
            plan["notes"].append("explicit quantization: the ONNX has Q/DQ nodes, no calibration")
        else:
            if major >= 11:
                raise CaptureError(f"TensorRT {version} has no implicit INT8 calibration: give an ONNX with "
                                   "QuantizeLinear/DequantizeLinear nodes (e.g. from ModelOpt)")
            need("INT8", "implicit quantization")
            plan["calibrator"] = calibrator
    else:
        raise CaptureError(f"precision {precision!r} is not supported by the tensorrt backend")
    if sparsity:
        if "SPARSE_WEIGHTS" not in avail:
            raise CaptureError(f"this TensorRT ({version}) has no BuilderFlag.SPARSE_WEIGHTS")
        plan["set"].append("SPARSE_WEIGHTS")
        plan["notes"].append("2:4 sparse tactics allowed; only weights already 2:4-sparse can use them")
    return plan


def onnx_has_qdq(op_types: Iterable[str]) -> bool:
    ops = set(op_types)
    return "QuantizeLinear" in ops and "DequantizeLinear" in ops


def engine_cache_key(model_sha256: str, plan: dict, input_shapes: dict, trt_version: str, gpu: str,
                     workspace_mb: int, calib_id: Optional[str] = None) -> str:
    """Engines are specific to the model bytes, the build flags, the shapes, the TensorRT version and the GPU."""
    doc = {"model": model_sha256, "set": sorted(plan.get("set", [])), "clear": sorted(plan.get("clear", [])),
           "calibrator": plan.get("calibrator"), "shapes": {k: list(v) for k, v in sorted(input_shapes.items())},
           "trt": trt_version, "gpu": gpu, "workspace_mb": workspace_mb, "calib": calib_id,
           "verbosity": plan.get("profiling_verbosity")}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def trtexec_command(trtexec: str, onnx_path: str, precision: str, version: str, *, sparsity: bool = False,
                    shapes: Optional[dict] = None, layer_info: str = "layer_info.trtexec.json",
                    profile: str = "profile.trtexec.json", engine: Optional[str] = None,
                    iterations: int = 50, calib_cache: Optional[str] = None) -> list[str]:
    """trtexec with detailed profiling verbosity, exporting layer information and a per-layer profile."""
    major = trt_major(version)
    cmd = [trtexec, f"--onnx={onnx_path}", "--profilingVerbosity=detailed", f"--exportLayerInfo={layer_info}",
           f"--exportProfile={profile}", "--separateProfileRun", f"--iterations={iterations}"]
    if major < 11 or major == 0:
        cmd += {"fp16": ["--fp16"], "bf16": ["--bf16"], "int8": ["--int8"], "best": ["--best"],
                "fp32": ["--noTF32"], "tf32": []}.get(precision, [])
        if precision in ("int8", "best") and calib_cache:
            cmd.append(f"--calib={calib_cache}")
    if sparsity:
        cmd.append("--sparsity=enable")
    if shapes:
        cmd.append("--shapes=" + ",".join(f"{k}:{'x'.join(str(d) for d in v)}" for k, v in shapes.items()))
    if engine:
        cmd.append(f"--saveEngine={engine}")
    return cmd


def concrete_shape(dims: Sequence, batch: int) -> list[int]:
    """ONNX/TensorRT dims with -1/None/0 for dynamic: the first becomes the batch; others must be fixed."""
    out = []
    for i, d in enumerate(dims):
        if d is None or (isinstance(d, int) and d <= 0):
            if i == 0:
                out.append(batch)
            else:
                raise CaptureError(f"input dim {i} is dynamic ({list(dims)}): give --input-shape")
        else:
            out.append(int(d))
    return out
