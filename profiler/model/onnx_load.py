"""Load an ONNX model safely and give it static shapes.

* Size limit: a protobuf file cannot be 2 GB or more; larger models keep their
  weights in external data files.  :func:`load_onnx` refuses files over
  ``max_bytes`` before reading them.
* External data is checked, never read: the analysis needs only tensor shapes,
  which the model file itself carries.  A reference must be a relative path that
  stays inside the model's own folder (no ``..``, no absolute path, no symlink
  out of the folder), the file must exist and be long enough.
* Every refusal is a :class:`profiler.errors.ModelError` with a one-line reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto

from profiler.errors import ModelError

#: Protobuf's hard limit: a serialized ModelProto must be under 2 GiB.
MAX_MODEL_BYTES = 2**31 - 1
#: Sanity limit on graph size (nodes in the main graph).
MAX_NODES = 500_000


def load_onnx(source, *, max_bytes: int | None = None, check: bool = True) -> onnx.ModelProto:
    """Load and validate an ONNX model from a path, bytes, a file-like object or a ModelProto.

    max_bytes: refuse larger model files (default :data:`MAX_MODEL_BYTES`, read at call
    time so tests can lower it).  External data is validated against the model's folder
    (paths only; for bytes there is no folder and references are only checked for safety).
    """
    limit = MAX_MODEL_BYTES if max_bytes is None else max_bytes
    base_dir: Path | None = None
    if isinstance(source, onnx.ModelProto):
        model = source
    else:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if not path.exists():
                raise ModelError(f"no such model file: {path}")
            if not path.is_file():
                raise ModelError(f"not a file: {path}")
            size = path.stat().st_size
            _check_size(size, limit, path.name)
            data = path.read_bytes()
            base_dir = path.resolve().parent
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            _check_size(len(data), limit, "upload")
        elif hasattr(source, "getvalue") or hasattr(source, "read"):
            data = source.getvalue() if hasattr(source, "getvalue") else source.read()
            _check_size(len(data), limit, getattr(source, "name", "upload"))
        else:
            raise ModelError(f"cannot load a model from {type(source).__name__}")
        model = _parse(data)
    _check_structure(model)
    check_external_data(model, base_dir)
    if check:
        _run_checker(model)
    return model


def _check_size(size: int, limit: int, label: str) -> None:
    if size == 0:
        raise ModelError(f"{label} is empty, not an ONNX model")
    if size > limit:
        hint = (" (a single ONNX protobuf file cannot reach 2 GB: save the weights as external data)"
                if limit >= MAX_MODEL_BYTES else "")
        raise ModelError(f"{label} is {size / 1e9:.2f} GB, over the {limit / 1e9:.2f} GB limit{hint}")


def _parse(data: bytes) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"not a readable ONNX model (truncated or not ONNX): {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return model


def _check_structure(model: onnx.ModelProto) -> None:
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ModelError("not an ONNX model: no graph nodes (wrong file type or truncated)")
    if model.ir_version <= 0:
        raise ModelError("not an ONNX model: no IR version (wrong file type or truncated)")
    if len(model.opset_import) == 0:
        raise ModelError("incomplete ONNX model: no opset_import (file truncated?)")
    if len(model.graph.node) > MAX_NODES:
        raise ModelError(f"model has {len(model.graph.node)} nodes, over the {MAX_NODES} limit")


def _run_checker(model: onnx.ModelProto) -> None:
    """onnx.checker on the structure.  External weights (already validated by
    :func:`check_external_data`) are presented to it as graph inputs, so it reads no files."""
    external = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
    if external:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        keep = [t for t in copy.graph.initializer if t.data_location != TensorProto.EXTERNAL]
        del copy.graph.initializer[:]
        copy.graph.initializer.extend(keep)
        known_inputs = {vi.name for vi in copy.graph.input}
        copy.graph.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                                for t in external if t.name not in known_inputs)
        model = copy
    try:
        onnx.checker.check_model(model, full_check=False)
    except onnx.checker.ValidationError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), "validation failed")
        raise ModelError(f"invalid ONNX model: {first}") from None
    except ValueError as exc:  # e.g. a proto too large for the in-memory checker
        raise ModelError(f"invalid ONNX model: {str(exc).splitlines()[0]}") from None


def _all_tensors(graph: onnx.GraphProto):
    """Initializers and attribute tensors of a graph and its subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def check_external_data(model: onnx.ModelProto, base_dir: Path | None) -> list[dict]:
    """Validate every external-data reference; return them as dicts (tensor, location, offset, length).

    Raises ModelError for absolute paths, ``..`` components, locations that resolve
    outside ``base_dir`` and, when ``base_dir`` is known, missing or too-short files.
    """
    refs = []
    for tensor in _all_tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        name = tensor.name or "<unnamed>"
        if not location:
            raise ModelError(f"tensor '{name}' is marked external but names no file")
        rel = Path(location)
        if rel.is_absolute() or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
            raise ModelError(f"tensor '{name}': external data path '{location}' is absolute; only files in the model's folder are allowed")
        if ".." in Path(location.replace("\\", "/")).parts:
            raise ModelError(f"tensor '{name}': external data path '{location}' leaves the model's folder")
        offset = int(info.get("offset", 0) or 0)
        length = int(info["length"]) if info.get("length") else None
        if base_dir is not None:
            target = (base_dir / rel).resolve()
            if not target.is_relative_to(base_dir):
                raise ModelError(f"tensor '{name}': external data '{location}' resolves outside the model's folder")
            if not target.is_file():
                raise ModelError(f"tensor '{name}': external data file '{location}' not found next to the model")
            size = target.stat().st_size
            if length is not None and offset + length > size:
                raise ModelError(f"tensor '{name}': external data '{location}' is shorter than declared (truncated?)")
        refs.append({"tensor": name, "location": location, "offset": offset, "length": length})
    return refs


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real graph inputs (old exporters also list initializers as inputs)."""
    inits = {t.name for t in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in inits]


def dims_of(value_info: onnx.ValueInfoProto) -> list | None:
    """Dims of a tensor value info: ints, dim_param strings, or None for unknown dims."""
    ttype = value_info.type.tensor_type
    if not ttype.HasField("shape"):
        return None
    out = []
    for d in ttype.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def with_static_shapes(model: onnx.ModelProto,
                       input_shapes: Mapping[str, Sequence[int]] | None = None) -> onnx.ModelProto:
    """A copy of ``model`` whose inputs are fixed (from ``input_shapes`` where given) and
    whose intermediate shapes are inferred.  Raises ModelError for dynamic input dims
    without values or for shape inference errors."""
    input_shapes = dict(input_shapes or {})
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    inputs = {vi.name: vi for vi in graph_inputs(model_copy)}
    unknown = sorted(set(input_shapes) - set(inputs))
    if unknown:
        raise ModelError(f"input_shapes names {unknown} are not model inputs (inputs: {sorted(inputs)})")
    for name, vi in inputs.items():
        if name in input_shapes:
            dims = [int(d) for d in input_shapes[name]]
            if any(d <= 0 for d in dims):
                raise ModelError(f"input '{name}': shape {dims} must be positive")
            shape = vi.type.tensor_type.shape
            if vi.type.tensor_type.HasField("shape") and len(shape.dim) not in (0, len(dims)):
                raise ModelError(f"input '{name}' has rank {len(shape.dim)}, input_shapes gives {len(dims)} dims")
            del shape.dim[:]
            for d in dims:
                shape.dim.add().dim_value = d
            continue
        dims = dims_of(vi)
        if dims is None or any(not isinstance(d, int) or d <= 0 for d in dims):
            shown = "unknown rank" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
            raise ModelError(
                f"input '{name}' has dynamic shape {shown} without values; give input_shapes={{'{name}': [...]}}")
    # Drop stale intermediate shapes so inference recomputes them from the fixed inputs.
    del model_copy.graph.value_info[:]
    inferred = _infer(model_copy)
    if _has_unknown_shapes(inferred):
        # Shape arithmetic (Shape -> Gather -> Concat -> Reshape, ...) that ONNX's data propagation
        # does not follow: evaluate it, infer again on a copy where it is constant, keep those shapes.
        values = fold_shape_tensors(inferred)
        if values:
            folded = onnx.ModelProto()
            folded.CopyFrom(inferred)
            keep = [n for n in folded.graph.node if not all(o in values for o in n.output if o)]
            del folded.graph.node[:]
            folded.graph.node.extend(keep)
            have = {t.name for t in folded.graph.initializer}
            folded.graph.initializer.extend(onnx.numpy_helper.from_array(v, name) for name, v in values.items()
                                            if name not in have)
            del folded.graph.value_info[:]
            try:
                better = _infer(folded)
            except ModelError:
                return inferred
            del inferred.graph.value_info[:]
            inferred.graph.value_info.extend(better.graph.value_info)
            known = {vi.name for vi in inferred.graph.value_info}
            for name, v in values.items():  # folded tensors keep their (constant) shapes
                if name not in known and name not in have:
                    inferred.graph.value_info.append(onnx.helper.make_tensor_value_info(
                        name, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
    return inferred


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError / RuntimeError subclasses
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ModelError(f"shape inference failed: {first}") from None


def _has_unknown_shapes(model: onnx.ModelProto) -> bool:
    known = {vi.name: dims_of(vi) for vi in list(model.graph.value_info) + list(model.graph.output)}
    for node in model.graph.node:
        for out in node.output:
            dims = known.get(out)
            if out and (dims is None or any(not isinstance(d, int) for d in dims)):
                return True
    return False


#: Largest tensor (elements) :func:`fold_shape_tensors` evaluates: shape vectors, not weights.
FOLD_MAX_ELEMENTS = 1024


def fold_shape_tensors(model: onnx.ModelProto) -> dict:
    """Values of the small tensors computable before inference (static input shapes): Shape /
    Size of statically shaped tensors and everything derived only from those and small
    constants.  Evaluated with onnx's reference implementation (all at once, else node by node)."""
    import numpy as np

    shapes = {vi.name: dims_of(vi) for vi in list(model.graph.input) + list(model.graph.value_info)}
    values: dict = {}
    for init in model.graph.initializer:
        if init.data_location != TensorProto.EXTERNAL and np.prod(init.dims) <= FOLD_MAX_ELEMENTS:
            values[init.name] = onnx.numpy_helper.to_array(init)
    shape_values: dict = {}
    candidates = []
    known = set(values)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        inputs = [i for i in node.input if i]
        if node.op_type in ("Shape", "Size"):
            dims = shapes.get(node.input[0])
            if dims is None or any(not isinstance(d, int) for d in dims):
                continue
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Size":
                shape_values[node.output[0]] = np.array(int(np.prod(dims)), dtype=np.int64)
            else:
                start, end = attrs.get("start", 0), attrs.get("end", len(dims))
                shape_values[node.output[0]] = np.array(dims[start:end], dtype=np.int64)
            known.add(node.output[0])
        elif (inputs or node.op_type == "Constant") and all(i in known for i in inputs) \
                and not node.op_type.startswith("Random"):
            candidates.append(node)
            known.update(o for o in node.output if o)
    values.update(shape_values)
    opset = next((imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")), 17)
    produced = dict(shape_values)
    for group in ([candidates], [[n] for n in candidates]):  # all at once; node by node on failure
        for nodes in group:
            outs = _evaluate(nodes, values, opset)
            if outs is None:
                if len(group) == 1:
                    break
                continue
            for name, value in outs.items():
                if value.size <= FOLD_MAX_ELEMENTS:
                    produced[name] = value
                values[name] = value
        else:
            return produced
    return produced


def _evaluate(nodes, values: dict, opset: int) -> dict | None:
    """Run ``nodes`` with onnx.reference on the known ``values``; None if anything fails."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    made = {o for n in nodes for o in n.output if o}
    needed = [i for n in nodes for i in n.input if i and i not in made]
    if any(i not in values for i in needed):
        return None
    outputs = [o for n in nodes for o in n.output if o]
    try:
        graph = onnx.helper.make_graph(
            list(nodes), "fold",
            [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(values[i].dtype), None)
             for i in dict.fromkeys(needed)],
            [onnx.helper.make_empty_tensor_value_info(o) for o in outputs])
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        results = ReferenceEvaluator(model).run(None, {i: values[i] for i in dict.fromkeys(needed)})
    except Exception:
        return None
    return {name: np.asarray(v) for name, v in zip(outputs, results)}
