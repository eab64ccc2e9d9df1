"""Reading TensorRT layer information: IEngineInspector JSON (also what `trtexec --exportLayerInfo` writes) and
`trtexec --exportProfile` JSON. Pure Python; no tensorrt import.

Inspector JSON, as TensorRT writes it:
- ProfilingVerbosity.DETAILED: {"Layers": [{"Name", "LayerType", "Inputs": [{"Name", "Location", "Dimensions",
  "Format/Datatype"}], "Outputs": [...], "ParameterType", "TacticName", "TacticValue", "StreamId", "Metadata",
  ... layer parameters (Kernel, Stride, Groups, Weights, ...)}], "Bindings": ["in", "out"]} (TensorRT <= 10) or
  "I/O Tensors": [{"Name", "IOMode", "DataType", "Dimensions", ...}] (TensorRT 11);
- LAYER_NAMES_ONLY: {"Layers": ["name", ...], "Bindings": [...]}.
`Metadata` (TensorRT 10) names the ONNX nodes a fused layer came from ("[ONNX Layer: /conv1/Conv]", several
joined by the ASCII record separator \\x1e).
trtexec profile: [{"count": N}, {"name", "timeMs", "averageMs", "medianMs" (newer), "percentage"}, ...].
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Union

_PRECISIONS = (
    (re.compile(r"\bfp8\b|e4m3|e5m2", re.I), "fp8"),
    (re.compile(r"\bint8\b", re.I), "int8"),
    (re.compile(r"\bint4\b", re.I), "int4"),
    (re.compile(r"\bbf16\b|bfloat16", re.I), "bf16"),
    (re.compile(r"\bfp16\b|\bhalf\b", re.I), "fp16"),
    (re.compile(r"\bfp32\b|\bfloat\b|\bfloat32\b", re.I), "fp32"),
    (re.compile(r"\bint32\b", re.I), "int32"),
    (re.compile(r"\bint64\b", re.I), "int64"),
    (re.compile(r"\bbool\b", re.I), "bool"),
)


def precision_of(fmt: Optional[str]) -> Optional[str]:
    """'Thirty-two wide channel vectorized row major Int8 format' -> 'int8'; 'Row major linear FP32' -> 'fp32'."""
    if not fmt:
        return None
    for rx, name in _PRECISIONS:
        if rx.search(fmt):
            return name
    return None


def onnx_nodes(metadata: Optional[str]) -> list[str]:
    if not metadata:
        return []
    found = re.findall(r"\[ONNX Layer: ([^\]]+)\]", metadata)
    if found:
        return [f.strip() for f in found]
    return [p.strip() for p in re.split(r"[\x1e]", metadata) if p.strip()]


def _load(obj: Union[str, bytes, dict, list]) -> Any:
    if isinstance(obj, (str, bytes)):
        return json.loads(obj)
    return obj


def _tensor(t: Any) -> dict:
    if isinstance(t, str):
        return {"name": t}
    fmt = t.get("Format/Datatype") or t.get("Format") or t.get("DataType")
    return {"name": t.get("Name"), "dims": t.get("Dimensions"), "location": t.get("Location"), "format": fmt,
            "precision": precision_of(fmt)}


def parse_layer_info(obj: Union[str, bytes, dict, list]) -> dict:
    """Normalised layers: {'verbosity': 'detailed'|'layer_names_only'|'none', 'layers': [...], 'io': [...]}.

    Each layer: name, type (LayerType), parameter_type, precision (of its first output, else first input),
    input/output tensors (name, dims, format, precision), tactic (TacticName, else TacticValue), tactic_value,
    kernel (TacticName where TensorRT names the kernel), onnx_nodes, stream, fused (count of ONNX nodes or of
    ' + '-joined names), attributes (remaining keys: Kernel, Stride, Groups, Weights, ...)."""
    doc = _load(obj)
    if isinstance(doc, list):  # some tools write the layer list alone
        doc = {"Layers": doc}
    if not isinstance(doc, dict) or "Layers" not in doc:
        raise ValueError("not TensorRT layer information (no 'Layers' key)")
    raw_layers = doc.get("Layers") or []
    layers = []
    verbosity = "none" if not raw_layers else "layer_names_only"
    known = {"Name", "LayerType", "Inputs", "Outputs", "ParameterType", "TacticName", "TacticValue", "StreamId",
             "Metadata", "Origin"}
    for i, L in enumerate(raw_layers):
        if isinstance(L, str):
            # detailed JSON of one layer can itself arrive as a JSON string
            try:
                maybe = json.loads(L)
            except ValueError:
                maybe = None
            if isinstance(maybe, dict):
                L = maybe
            else:
                layers.append({"index": i, "name": L, "type": None, "precision": None, "inputs": [], "outputs": [],
                               "tactic": None, "tactic_value": None, "kernel": None, "onnx_nodes": [],
                               "stream": None, "fused": L.count(" + ") + 1, "attributes": {}})
                continue
        verbosity = "detailed"
        ins = [_tensor(t) for t in L.get("Inputs", [])]
        outs = [_tensor(t) for t in L.get("Outputs", [])]
        prec = next((t["precision"] for t in outs if t.get("precision")), None) or \
            next((t["precision"] for t in ins if t.get("precision")), None)
        tname = L.get("TacticName")
        nodes = onnx_nodes(L.get("Metadata"))
        name = L.get("Name", f"layer_{i}")
        layers.append({
            "index": i, "name": name, "type": L.get("LayerType"), "parameter_type": L.get("ParameterType"),
            "origin": L.get("Origin"), "precision": prec, "inputs": ins, "outputs": outs,
            "tactic": tname or L.get("TacticValue"), "tactic_value": L.get("TacticValue"),
            "kernel": tname if tname else None, "onnx_nodes": nodes, "stream": L.get("StreamId"),
            "fused": len(nodes) if nodes else name.count(" + ") + 1,
            "attributes": {k: v for k, v in L.items() if k not in known},
        })
    io = []
    if "I/O Tensors" in doc:
        for t in doc["I/O Tensors"] or []:
            io.append({"name": t.get("Name"), "mode": (t.get("IOMode") or "").lower() or None,
                       "dtype": t.get("DataType"), "dims": t.get("Dimensions")})
    elif "Bindings" in doc:
        io = [{"name": b, "mode": None, "dtype": None, "dims": None} for b in doc["Bindings"] or []]
    return {"verbosity": verbosity, "layers": layers, "io": io}


def parse_trtexec_profile(obj: Union[str, bytes, list]) -> dict:
    """{'count': iterations or None, 'layers': [{'name', 'time_ms', 'average_ms', 'median_ms', 'percentage'}]}."""
    doc = _load(obj)
    if not isinstance(doc, list):
        raise ValueError("not a trtexec --exportProfile file (expected a JSON list)")
    count = None
    rows = []
    for item in doc:
        if not isinstance(item, dict):
            continue
        if "count" in item and "name" not in item:
            count = item["count"]
            continue
        if "name" not in item:
            continue
        rows.append({"name": item["name"], "time_ms": item.get("timeMs"), "average_ms": item.get("averageMs"),
                     "median_ms": item.get("medianMs"), "percentage": item.get("percentage")})
    return {"count": count, "layers": rows}


def join_profile(info: dict, profile: dict) -> dict:
    """Adds average_ms/median_ms/percentage from a trtexec profile to parse_layer_info's layers (by name).
    Reformat layers TensorRT inserts at run time appear only in the profile; they are appended."""
    by_name = {r["name"]: r for r in profile.get("layers", [])}
    seen = set()
    for L in info["layers"]:
        r = by_name.get(L["name"])
        if r:
            L.update(average_ms=r["average_ms"], median_ms=r["median_ms"], percentage=r["percentage"])
            seen.add(L["name"])
    for r in profile.get("layers", []):
        if r["name"] not in seen:
            info["layers"].append({"index": None, "name": r["name"], "type": "Reformat" if
                                   r["name"].startswith("Reformatting") else None, "precision": None,
                                   "inputs": [], "outputs": [], "tactic": None, "tactic_value": None, "kernel": None,
                                   "onnx_nodes": [], "stream": None, "fused": 1, "attributes": {},
                                   "average_ms": r["average_ms"], "median_ms": r["median_ms"],
                                   "percentage": r["percentage"], "profile_only": True})
    return info


def precision_counts(info: dict) -> dict:
    out: dict = {}
    for L in info["layers"]:
        k = L.get("precision") or "unknown"
        out[k] = out.get(k, 0) + 1
    return out
