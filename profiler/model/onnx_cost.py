"""Static per-node cost of an ONNX model: FLOPs, bytes, parameters, intensity, findings.

``onnx_node_costs(model_or_path, precision="fp16")`` returns one row per node of
the main graph.  Floating-point tensors (activations and weights) are counted at
the chosen precision's width; integer tensors (indices, shapes) at their own.
Formulas live in :mod:`profiler.model.op_cost`; conventions in docs/notes/model.md.
Ops without a formula keep NaN costs, ``counted=False`` and a finding saying so.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Mapping, Sequence

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

from profiler.model import op_cost as oc
from profiler.model.onnx_load import load_onnx, with_static_shapes

#: Columns of the per-node frame, in order: the shared cost columns plus tensor names and
#: the bytes each output adds to bytes_written (used to drop intermediate tensors from the
#: traffic of TensorRT layers that fuse several nodes).
COLUMNS = oc.COST_COLUMNS + ["input_names", "output_names", "output_bytes"]

#: Below this intensity (FLOP/byte) a conv/matmul is memory-bound on every GPU in
#: data/gpu_specs.csv at FP16 (the lowest ridge point there is ~80 FLOP/B).
LOW_INTENSITY = 50.0

#: ONNX ops the TensorRT ONNX parser handles natively.  Source: onnx-tensorrt
#: docs/operators.md (TensorRT 8.5 matrix, "Y" rows) plus ops added in later
#: releases (LayerNormalization 8.6, GroupNormalization, Attention-era ops 10.x).
TENSORRT_NATIVE_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GroupNormalization GRU HardSigmoid HardSwish Identity If ImageScaler InstanceNormalization
IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization
LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not
OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean
ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round
ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

_FLOAT_TYPES = {
    TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE,
    getattr(TensorProto, "FLOAT8E4M3FN", -1), getattr(TensorProto, "FLOAT8E5M2", -1),
    getattr(TensorProto, "FLOAT8E4M3FNUZ", -1), getattr(TensorProto, "FLOAT8E5M2FNUZ", -1),
}

#: Ops whose output is just a (possibly converted) copy of a constant input: they
#: pass "is a weight" through, and the weight is credited to the real consumer.
_ALIAS_OPS = {"Identity", "Cast", "DequantizeLinear", "QuantizeLinear", "Reshape", "Transpose",
              "Unsqueeze", "Squeeze", "Flatten"}

_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size",
             "Constant", "ConstantOfShape", "Range", "EyeLike", "Optional", "OptionalGetElement"}

_ACTIVATIONS = {
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
    "Softplus", "Softsign", "Gelu", "Erf", "Exp", "Log", "Sqrt", "Reciprocal", "Neg", "Abs", "Ceil",
    "Floor", "Round", "Sign", "Clip", "Mish", "ThresholdedRelu", "Sin", "Cos", "Tan", "Asin", "Acos",
    "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Not", "IsNaN", "IsInf", "Shrink",
}

_BINARY = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "Mod", "Equal", "Greater",
           "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "BitShift", "Where", "PRelu"}

_REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
           "ReduceProd": "prod", "ReduceL1": "l1", "ReduceL2": "l2", "ReduceSumSquare": "sumsquare",
           "ReduceLogSum": "logsum", "ReduceLogSumExp": "logsumexp", "ArgMax": "argmax",
           "ArgMin": "argmin"}

_COPY_OPS = {"Concat", "Transpose", "Pad", "Tile", "Expand", "Split", "Cast", "DepthToSpace",
             "SpaceToDepth", "Trilu", "ReverseSequence", "Compress", "OneHot"}


class _Unknown(Exception):
    """No formula for this node (or its shapes are unknown)."""


class _NodeView:
    """What a formula needs to know about one node."""

    def __init__(self, node, shapes, elem_types, consts, width):
        self.node = node
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self._shapes = shapes
        self._types = elem_types
        self._consts = consts
        self.width = width

    def has_input(self, i: int) -> bool:
        return len(self.node.input) > i and self.node.input[i] != ""

    def shape(self, name: str) -> tuple:
        shape = self._shapes.get(name)
        if shape is None or any(not isinstance(d, int) or d < 0 for d in shape):
            raise _Unknown(f"shape of '{name}' unknown after shape inference")
        return shape

    def in_shape(self, i: int) -> tuple:
        if not self.has_input(i):
            raise _Unknown(f"input {i} missing")
        return self.shape(self.node.input[i])

    def out_shape(self, i: int = 0) -> tuple:
        return self.shape(self.node.output[i])

    def bytes_of(self, name: str) -> float:
        """Element width in bytes: the chosen precision for float tensors, else the dtype's own."""
        etype = self._types.get(name, TensorProto.FLOAT)
        if etype in _FLOAT_TYPES or etype == TensorProto.UNDEFINED:
            return self.width
        try:
            return float(np.dtype(helper.tensor_dtype_to_np_dtype(etype)).itemsize)
        except Exception:
            return self.width

    def tensor_bytes(self, name: str) -> float:
        return oc.numel(self.shape(name)) * self.bytes_of(name)

    def is_const(self, i: int) -> bool:
        return self.has_input(i) and self.node.input[i] in self._consts

    def const_value(self, i: int):
        return self._consts.get(self.node.input[i]) if self.has_input(i) else None

    def attr(self, name, default=None):
        return self.attrs.get(name, default)


def _with_real_bytes(cost: oc.OpCost, view: _NodeView, inputs: Sequence[int] | None = None,
                     outputs: Sequence[int] | None = None) -> oc.OpCost:
    """Recount bytes from the node's real tensors (float at precision, ints at their width)."""
    ins = range(len(view.node.input)) if inputs is None else inputs
    outs = range(len(view.node.output)) if outputs is None else outputs
    read = sum(view.tensor_bytes(view.node.input[i]) for i in ins if view.has_input(i))
    written = sum(view.tensor_bytes(view.node.output[i]) for i in outs
                  if i < len(view.node.output) and view.node.output[i])
    return oc.OpCost(cost.flops, cost.macs, read, written, cost.params, cost.output_shape, cost.note,
                     cost.extra)


# --- formulas per op type -------------------------------------------------------------------

def _conv(v: _NodeView) -> oc.OpCost:
    x, w = v.in_shape(0), v.in_shape(1)
    cost = oc.conv(x, w, v.out_shape(), strides=v.attr("strides"), pads=v.attr("pads"),
                   dilations=v.attr("dilations"), groups=int(v.attr("group", 1)),
                   bias=v.has_input(2), dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0, 1, 2], [0])


def _conv_transpose(v: _NodeView) -> oc.OpCost:
    x, w = v.in_shape(0), v.in_shape(1)
    cost = oc.conv_transpose(x, w, v.out_shape(), strides=v.attr("strides"), pads=v.attr("pads"),
                             dilations=v.attr("dilations"), output_padding=v.attr("output_padding"),
                             groups=int(v.attr("group", 1)), bias=v.has_input(2), dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0, 1, 2], [0])


def _gemm(v: _NodeView) -> oc.OpCost:
    c = v.in_shape(2) if v.has_input(2) else None
    cost = oc.gemm(v.in_shape(0), v.in_shape(1), c, trans_a=bool(v.attr("transA", 0)),
                   trans_b=bool(v.attr("transB", 0)), dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0, 1, 2], [0])


def _matmul(v: _NodeView) -> oc.OpCost:
    cost = oc.matmul(v.in_shape(0), v.in_shape(1), dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0, 1], [0])


def _einsum(v: _NodeView) -> oc.OpCost:
    eq = str(v.attr("equation", b"")).replace(" ", "")
    eq = eq[2:-1] if eq.startswith("b'") else eq
    if "..." in eq or "->" not in eq:
        raise _Unknown(f"Einsum '{eq}' (ellipsis or implicit output) not costed")
    lhs, rhs = eq.split("->")
    terms = lhs.split(",")
    sizes: dict[str, int] = {}
    for i, term in enumerate(terms):
        for letter, dim in zip(term, v.in_shape(i)):
            sizes[letter] = max(sizes.get(letter, 1), int(dim))
    macs = math.prod(sizes.values()) if len(terms) > 1 else 0
    out = v.out_shape()
    flops = 2 * macs if macs else oc.numel(v.in_shape(0))
    return _with_real_bytes(oc.OpCost(flops=flops, macs=macs, output_shape=out), v)


def _attention(v: _NodeView) -> oc.OpCost:
    """ai.onnx Attention (opset 23) and com.microsoft MultiHeadAttention: Q, K, V inputs."""
    q, k, vv = v.in_shape(0), v.in_shape(1), v.in_shape(2)
    heads = v.attr("q_num_heads") or v.attr("num_heads")
    cost = oc.attention(q, k, vv, num_heads=heads, kv_num_heads=v.attr("kv_num_heads"),
                        causal=bool(v.attr("is_causal", 0) or v.attr("unidirectional", 0)),
                        dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0, 1, 2], [0])


def _ms_attention(v: _NodeView) -> oc.OpCost:
    """com.microsoft Attention: input (B, S, hidden) x packed QKV weights (hidden, 3*hidden)."""
    x, w = v.in_shape(0), v.in_shape(1)
    heads = int(v.attr("num_heads"))
    proj = oc.matmul(x, w, bias_shape=v.in_shape(2) if v.has_input(2) else None, dtype_bytes=v.width)
    b, s = int(x[0]), int(x[1])
    hidden = int(w[1]) // 3
    qkv = (b, s, hidden)
    core = oc.attention(qkv, qkv, qkv, num_heads=heads,
                        causal=bool(v.attr("unidirectional", 0)), dtype_bytes=v.width)
    cost = oc.OpCost(proj.flops + core.flops, proj.macs + core.macs, output_shape=(b, s, hidden))
    return _with_real_bytes(cost, v, [0, 1, 2], [0])


def _norm(kind: str):
    def formula(v: _NodeView) -> oc.OpCost:
        x = v.in_shape(0)
        if kind == "layer" or kind == "rms":
            axis = int(v.attr("axis", -1))
            axis = axis + len(x) if axis < 0 else axis
            cost = oc.normalization(x, kind, normalized_numel=oc.numel(x[axis:]),
                                    affine=v.has_input(1), dtype_bytes=v.width)
        elif kind == "group":
            cost = oc.normalization(x, "group", channels=int(x[1]), dtype_bytes=v.width)
        else:
            cost = oc.normalization(x, kind, channels=int(x[1]) if len(x) > 1 else 1, dtype_bytes=v.width)
        return _with_real_bytes(cost, v, None, [0])
    return formula


def _skip_layer_norm(v: _NodeView) -> oc.OpCost:
    x = v.in_shape(0)
    cost = oc.normalization(x, "layer", normalized_numel=int(x[-1]), dtype_bytes=v.width)
    cost = cost + oc.elementwise(x, [x, x], dtype_bytes=v.width)
    return _with_real_bytes(cost, v, None, [0])


def _activation(v: _NodeView) -> oc.OpCost:
    op = v.node.op_type
    key = op.lower()
    if op == "Gelu" and str(v.attr("approximate", b"none")).strip("b'") == "tanh":
        key = "gelu_tanh"
    out = v.out_shape()
    cost = oc.elementwise(out, [out], flops_per_element=oc.ACTIVATION_FLOPS[key], dtype_bytes=v.width)
    return _with_real_bytes(cost, v)


def _binary(v: _NodeView) -> oc.OpCost:
    out = v.out_shape()
    shapes = [v.in_shape(i) for i in range(len(v.node.input)) if v.has_input(i)]
    per = oc.BINARY_FLOPS.get(v.node.op_type.lower(), 1) * max(1, len(shapes) - 1)
    if v.node.op_type == "Mean":
        per += 1
    if v.node.op_type == "PRelu":
        per = 2
    cost = oc.OpCost(flops=per * oc.numel(out), output_shape=out)
    return _with_real_bytes(cost, v)


def _quantize(flops_per_element: int):
    def formula(v: _NodeView) -> oc.OpCost:
        out = v.out_shape()
        return _with_real_bytes(oc.OpCost(flops=flops_per_element * oc.numel(out), output_shape=out), v)
    return formula


def _pool(kind: str):
    def formula(v: _NodeView) -> oc.OpCost:
        x, out = v.in_shape(0), v.out_shape()
        kernel = v.attr("kernel_shape") or x[2:]
        cost = oc.pool(x, out, kernel, kind=kind, dtype_bytes=v.width)
        return _with_real_bytes(cost, v, [0], [0])
    return formula


def _global_pool(kind: str):
    def formula(v: _NodeView) -> oc.OpCost:
        cost = oc.global_pool(v.in_shape(0), kind=kind, dtype_bytes=v.width)
        return _with_real_bytes(cost, v, [0], [0])
    return formula


def _softmax(v: _NodeView) -> oc.OpCost:
    x = v.in_shape(0)
    cost = oc.softmax(x, log=v.node.op_type == "LogSoftmax", dtype_bytes=v.width)
    if v.node.op_type == "Hardmax":
        cost = oc.elementwise(x, [x], flops_per_element=2, dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0], [0])


def _reduce(v: _NodeView) -> oc.OpCost:
    cost = oc.reduce(v.in_shape(0), v.out_shape(), kind=_REDUCE[v.node.op_type], dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0], [0])


def _resize(v: _NodeView) -> oc.OpCost:
    mode = str(v.attr("mode", b"nearest"))
    mode = mode[2:-1] if mode.startswith("b'") else mode
    cost = oc.resize(v.in_shape(0), v.out_shape(), mode=mode, dtype_bytes=v.width)
    return _with_real_bytes(cost, v, [0], [0])


def _copy(v: _NodeView) -> oc.OpCost:
    out = v.out_shape()
    cost = oc.data_movement(0, 0, output_shape=out)
    if v.node.op_type in ("Tile", "Expand", "Pad", "OneHot"):
        return _with_real_bytes(cost, v, [0], None)
    if v.node.op_type == "CumSum":
        cost = oc.OpCost(flops=oc.numel(out), output_shape=out)
        return _with_real_bytes(cost, v, [0], [0])
    data_inputs = [0] if v.node.op_type in ("Split", "Transpose", "Cast", "DepthToSpace",
                                            "SpaceToDepth", "Trilu", "Compress", "ReverseSequence") \
        else None
    return _with_real_bytes(cost, v, data_inputs, None)


def _slice_like(v: _NodeView) -> oc.OpCost:
    """Slice / Gather*: reads only what it writes (plus the indices)."""
    out = v.out_shape()
    written = v.tensor_bytes(v.node.output[0])
    index_bytes = v.tensor_bytes(v.node.input[1]) if v.node.op_type.startswith("Gather") and v.has_input(1) else 0
    return oc.OpCost(bytes_read=written + index_bytes, bytes_written=written, output_shape=out)


def _scatter(v: _NodeView) -> oc.OpCost:
    out = v.out_shape()
    return _with_real_bytes(oc.OpCost(output_shape=out), v)


def _topk(v: _NodeView) -> oc.OpCost:
    x = v.in_shape(0)
    k = v.const_value(1)
    k = int(np.asarray(k).reshape(-1)[0]) if k is not None else 1
    flops = oc.numel(x) * max(1, math.ceil(math.log2(k + 1)))
    return _with_real_bytes(oc.OpCost(flops=flops, output_shape=v.out_shape()), v, [0], None)


def _recurrent(v: _NodeView) -> oc.OpCost:
    x, w = v.in_shape(0), v.in_shape(1)
    seq, batch, inp = (int(d) for d in x)
    if int(v.attr("layout", 0)) == 1:
        batch, seq = seq, batch
    hidden = int(v.attr("hidden_size"))
    directions = int(w[0])
    cost = oc.recurrent(v.node.op_type, seq, batch, inp, hidden, directions=directions, dtype_bytes=v.width)
    return _with_real_bytes(cost, v)


def _lrn(v: _NodeView) -> oc.OpCost:
    x = v.in_shape(0)
    size = int(v.attr("size", 1))
    return _with_real_bytes(oc.OpCost(flops=(2 * size + 4) * oc.numel(x), output_shape=x), v, [0], [0])


def _view(v: _NodeView) -> oc.OpCost:
    return oc.view()


FORMULAS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "Einsum": _einsum, "Attention": _attention, "MultiHeadAttention": _attention,
    "BatchNormalization": _norm("batch"), "InstanceNormalization": _norm("instance"),
    "LayerNormalization": _norm("layer"), "GroupNormalization": _norm("group"),
    "RMSNormalization": _norm("rms"), "SimplifiedLayerNormalization": _norm("rms"),
    "SkipLayerNormalization": _skip_layer_norm, "LpNormalization": _norm("rms"),
    "MeanVarianceNormalization": _norm("instance"), "LRN": _lrn,
    "Softmax": _softmax, "LogSoftmax": _softmax, "Hardmax": _softmax,
    "MaxPool": _pool("max"), "AveragePool": _pool("avg"), "LpPool": _pool("lp"),
    "GlobalAveragePool": _global_pool("avg"), "GlobalMaxPool": _global_pool("max"),
    "GlobalLpPool": _global_pool("lp"),
    "Resize": _resize, "Upsample": _resize,
    "Slice": _slice_like, "Gather": _slice_like, "GatherElements": _slice_like, "GatherND": _slice_like,
    "ScatterND": _scatter, "ScatterElements": _scatter, "Scatter": _scatter,
    "TopK": _topk, "LSTM": _recurrent, "GRU": _recurrent, "RNN": _recurrent,
    "QuantizeLinear": _quantize(4), "DequantizeLinear": _quantize(2), "CumSum": _copy,
    "FastGelu": _activation, "BiasGelu": _activation,
}
FORMULAS.update({op: _activation for op in _ACTIVATIONS if op != "PRelu"})
FORMULAS.update({op: _binary for op in _BINARY})
FORMULAS.update({op: _reduce for op in _REDUCE})
FORMULAS.update({op: _copy for op in _COPY_OPS})
FORMULAS.update({op: _view for op in _VIEW_OPS})
FORMULAS["com.microsoft:Attention"] = _ms_attention


# --- graph walk -----------------------------------------------------------------------------

def _tensor_tables(model: onnx.ModelProto):
    """Shapes and element types of every named tensor, and the constant tensors."""
    graph = model.graph
    shapes: dict[str, tuple | None] = {}
    types: dict[str, int] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        ttype = vi.type.tensor_type
        types[vi.name] = ttype.elem_type
        if ttype.HasField("shape"):
            shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim)
        else:
            shapes.setdefault(vi.name, None)
    consts: dict[str, object] = {}
    for init in graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
        types[init.name] = init.data_type
        consts[init.name] = _small_value(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    shapes[node.output[0]] = tuple(int(d) for d in attr.t.dims)
                    types[node.output[0]] = attr.t.data_type
                    consts[node.output[0]] = _small_value(attr.t)
                elif attr.name in ("value_float", "value_int"):
                    shapes[node.output[0]] = ()
                    consts[node.output[0]] = helper.get_attribute_value(attr)
    return shapes, types, consts


def _small_value(tensor: onnx.TensorProto):
    """Values of small in-file tensors (shape arguments, K of TopK); None for weights."""
    if tensor.data_location == TensorProto.EXTERNAL or math.prod(tensor.dims) > 64:
        return None
    try:
        return numpy_helper.to_array(tensor)
    except Exception:
        return None


def _weight_roots(model: onnx.ModelProto, consts) -> dict[str, str]:
    """Map tensor name -> the initializer it is a copy of (through Identity, DQ, Cast, ...)."""
    inits = {t.name for t in model.graph.initializer}
    root = {name: name for name in inits}
    for node in model.graph.node:
        if node.op_type in _ALIAS_OPS and node.input and node.input[0] in root and node.output:
            root[node.output[0]] = root[node.input[0]]
            consts.setdefault(node.output[0], None)
    return root


def _float_initializers(model: onnx.ModelProto) -> dict[str, int]:
    return {t.name: math.prod(t.dims) for t in model.graph.initializer if t.data_type in _FLOAT_TYPES
            or t.data_type in (TensorProto.INT8, TensorProto.UINT8, getattr(TensorProto, "INT4", -1))}


def onnx_node_costs(model_or_path, precision: str = "fp16", *,
                    input_shapes: Mapping[str, Sequence[int]] | None = None,
                    max_bytes: int | None = None) -> pd.DataFrame:
    """Per-node static cost of an ONNX model, one row per node of the main graph.

    precision: width of float tensors ("fp32", "fp16", "bf16", "int8", "fp8", ...).
    input_shapes: values for dynamic input dims, e.g. ``{"input": [1, 3, 224, 224]}``.
    Columns: name, op_type, domain, flops, macs, bytes_read, bytes_written (bytes), params,
    intensity (FLOP/byte), input_shapes, output_shapes, tc_eligible (True/False/None),
    findings ("; "-joined), counted (False where no formula applied: costs are NaN).
    Raises ModelError for unreadable, unsafe, too large or dynamically shaped models.
    """
    model = load_onnx(model_or_path, max_bytes=max_bytes)
    model = with_static_shapes(model, input_shapes)
    width = oc.dtype_bytes(precision)
    shapes, types, consts = _tensor_tables(model)
    roots = _weight_roots(model, consts)
    weight_sizes = _float_initializers(model)
    producers, consumers = _producers_consumers(model)
    folded = _build_time_tensors(model)
    rows = []
    for index, node in enumerate(model.graph.node):
        view = _NodeView(node, shapes, types, consts, width)
        domain = node.domain or "ai.onnx"
        key = node.op_type if domain in ("ai.onnx", "") else f"{domain}:{node.op_type}"
        formula = FORMULAS.get(key) or (FORMULAS.get(node.op_type) if domain == "com.microsoft" else None)
        findings: list[str] = []
        cost, counted = None, True
        is_folded = formula is not None and all(o in folded for o in node.output if o)
        if is_folded:
            cost = oc.view()  # weights, shape arithmetic: computed once when the engine is built
        elif formula is None:
            counted = False
            findings.append(f"no cost formula for {key}: not counted")
        else:
            try:
                cost = formula(view)
            except _Unknown as exc:
                counted = False
                findings.append(f"not counted: {exc}")
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                counted = False
                findings.append(f"not counted: {type(exc).__name__}: {exc}")
        is_alias = node.op_type in _ALIAS_OPS and node.output and node.output[0] in roots
        params = 0
        if not is_alias:
            for pos, name in enumerate(node.input):
                root = roots.get(name)
                if root is None or root not in weight_sizes:
                    continue
                if node.op_type == "BatchNormalization" and pos in (3, 4):
                    continue  # running mean / var are buffers, not parameters
                params += weight_sizes[root]
        if is_alias and cost is not None:
            cost = oc.view()  # weight pass-through, constant-folded at build time
        tc = None if is_folded else _tc_eligibility(view, precision, findings)
        if not is_folded:
            findings.extend(_findings(view, cost, producers, consumers, roots))
        if domain not in ("ai.onnx", "") or node.op_type not in TENSORRT_NATIVE_OPS:
            findings.append("not supported natively by TensorRT's ONNX parser: needs a plugin or a graph rewrite")
        rows.append({
            "name": node.name or f"{node.op_type}_{index}",
            "op_type": node.op_type,
            "domain": domain,
            "flops": cost.flops if cost else math.nan,
            "macs": cost.macs if cost else math.nan,
            "bytes_read": cost.bytes_read if cost else math.nan,
            "bytes_written": cost.bytes_written if cost else math.nan,
            "params": params,
            "intensity": cost.intensity if cost else math.nan,
            "input_shapes": [shapes.get(n) if n else None for n in node.input],
            "output_shapes": [shapes.get(n) for n in node.output],
            "tc_eligible": tc,
            "findings": "; ".join(findings),
            "counted": counted,
            "input_names": list(node.input),
            "output_names": list(node.output),
            "output_bytes": _output_bytes(view, cost),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _build_time_tensors(model: onnx.ModelProto) -> set[str]:
    """Tensors known before inference runs (inputs have static shapes): initializers,
    constants, Shape/Size outputs, and everything computed only from those (weight
    pass-throughs, shape arithmetic).  TensorRT folds them when it builds the engine."""
    known = {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type in ("Shape", "Size") or (node.op_type in ("Constant", "ConstantOfShape", "Range", "EyeLike")
                                                   and all(i in known for i in inputs)) \
                or (inputs and all(i in known for i in inputs) and not node.op_type.startswith("Random")):
            known.update(o for o in node.output if o)
    return known


def _output_bytes(view: _NodeView, cost) -> list[float]:
    """Bytes each output contributes to the node's bytes_written (0 for views and uncounted)."""
    if cost is None or not cost.bytes_written:
        return [0.0] * len(view.node.output)
    out = []
    for name in view.node.output:
        try:
            out.append(view.tensor_bytes(name) if name else 0.0)
        except _Unknown:
            out.append(0.0)
    return out


def _producers_consumers(model):
    producers, consumers = {}, defaultdict(list)
    for node in model.graph.node:
        for out in node.output:
            producers[out] = node
        for inp in node.input:
            if inp:
                consumers[inp].append(node)
    return producers, consumers


def _tc_eligibility(v: _NodeView, precision: str, findings: list[str]):
    """True/False for ops that can use Tensor Cores, None for the others."""
    op = v.node.op_type
    try:
        if op in ("Conv", "ConvTranspose"):
            x, w = v.in_shape(0), v.in_shape(1)
            groups = int(v.attr("group", 1))
            if op == "Conv":
                c_in, c_out = int(x[1]), int(w[0])
            else:
                c_in, c_out = int(w[0]), int(w[1]) * groups
            ok, why = oc.conv_tensor_core_eligible(c_in, c_out, groups, precision)
        elif op in ("Gemm", "MatMul"):
            v.in_shape(0)  # both shapes must be known
            b = list(v.in_shape(1))
            if op == "Gemm" and v.attr("transB", 0):
                b[-1], b[-2] = b[-2], b[-1]
            k = int(b[-2]) if len(b) > 1 else int(b[0])
            n = int(b[-1]) if len(b) > 1 else 1
            ok, why = oc.matmul_tensor_core_eligible(k, n, precision)
        elif op in ("Attention", "MultiHeadAttention"):
            q = v.in_shape(0)
            heads = v.attr("q_num_heads") or v.attr("num_heads") or 1
            d = int(q[-1]) if len(q) == 4 else int(q[-1]) // int(heads)
            ok, why = oc.matmul_tensor_core_eligible(d, d, precision)
        else:
            return None
    except _Unknown:
        return None
    if not ok:
        findings.append(f"Tensor Cores: not eligible ({why})")
    return ok


def _findings(v: _NodeView, cost, producers, consumers, roots) -> list[str]:
    node, op = v.node, v.node.op_type
    out: list[str] = []
    try:
        if op == "Conv":
            w = v.in_shape(1)
            groups = int(v.attr("group", 1))
            kernel = [int(k) for k in w[2:]]
            if groups > 1 and int(w[1]) == 1:
                out.append("depthwise conv: low arithmetic intensity, memory-bound")
            elif groups > 1:
                out.append(f"grouped conv (groups={groups}): smaller GEMMs per group")
            if kernel and all(k == 1 for k in kernel):
                out.append("1x1 (pointwise) conv: lower arithmetic intensity than larger kernels")
            if any(int(d) > 1 for d in (v.attr("dilations") or [])):
                out.append("dilated conv: fewer fast kernel choices")
        if op in ("Conv", "ConvTranspose", "Gemm", "MatMul") and cost is not None \
                and not math.isnan(cost.intensity) and cost.intensity < LOW_INTENSITY:
            out.append(f"low arithmetic intensity ({cost.intensity:.0f} FLOP/B): likely memory-bound")
        if op == "MatMul" and not any(n in roots for n in node.input[:2]):
            out.append("activation x activation MatMul (attention-style): no weights")
        if op == "Add" and len(node.input) == 2 and not any(n in roots for n in node.input):
            a, b = v.in_shape(0), v.in_shape(1)
            if a == b and len(a) >= 3:
                out.append("shortcut (residual) add: reads two full activations; "
                           "TensorRT usually fuses it into the producing conv")
        if op == "Concat":
            out.append("Concat: memory-bound copy (TensorRT can often elide it by writing producers in place)")
        if op in ("Transpose", "DepthToSpace", "SpaceToDepth"):
            out.append("layout change: moves every element, memory-bound")
        if op in ("Pad", "Tile", "Expand", "Split", "Slice", "Gather", "GatherElements", "GatherND"):
            out.append("data movement only: memory-bound")
        if op in ("Resize", "Upsample"):
            out.append("Resize: memory-bound")
        if op == "Softmax" and _is_attention_softmax(node, producers, consumers):
            out.append("attention pattern (MatMul-Softmax-MatMul): TensorRT can fuse it into one MHA kernel")
    except _Unknown:
        pass
    return out


def _is_attention_softmax(node, producers, consumers) -> bool:
    """Softmax fed (through scale / mask / cast ops) by a MatMul and feeding a MatMul."""
    passthrough = {"Mul", "Div", "Add", "Cast", "Where", "Sub"}

    def reaches(start_nodes, step, depth=4):
        frontier = list(start_nodes)
        for _ in range(depth):
            nxt = []
            for n in frontier:
                if n is None:
                    continue
                if n.op_type in ("MatMul", "Einsum"):
                    return True
                if n.op_type in passthrough:
                    nxt.extend(step(n))
            frontier = nxt
        return False

    up = reaches([producers.get(node.input[0])], lambda n: [producers.get(i) for i in n.input])
    down = reaches(consumers.get(node.output[0], []),
                   lambda n: [c for o in n.output for c in consumers.get(o, [])])
    return up and down


def onnx_totals(costs: pd.DataFrame) -> dict:
    """Model totals from :func:`onnx_node_costs`.

    flops / macs / params / bytes_read / bytes_written summed over counted nodes;
    intensity in FLOP/byte; unknown_ops maps op type -> nodes that were not counted.
    """
    counted = costs[costs["counted"]]
    flops = float(counted["flops"].sum())
    moved = float(counted["bytes_read"].sum() + counted["bytes_written"].sum())
    return {
        "nodes": int(len(costs)),
        "counted_nodes": int(len(counted)),
        "flops": flops,
        "macs": float(counted["macs"].sum()),
        "gflops": flops / 1e9,
        "gmacs": float(counted["macs"].sum()) / 1e9,
        "params": int(costs["params"].sum()),
        "bytes_read": float(counted["bytes_read"].sum()),
        "bytes_written": float(counted["bytes_written"].sum()),
        "intensity": flops / moved if moved else math.nan,
        "unknown_ops": dict(Counter(costs.loc[~costs["counted"], "op_type"])),
        "tc_ineligible_nodes": int((costs["tc_eligible"] == False).sum()),  # noqa: E712
    }


def costs_by_op_type(costs: pd.DataFrame) -> pd.DataFrame:
    """FLOPs, MACs, bytes, params and node count per op type, largest FLOPs first."""
    grouped = costs.groupby("op_type").agg(
        nodes=("name", "size"), flops=("flops", "sum"), macs=("macs", "sum"),
        bytes_read=("bytes_read", "sum"), bytes_written=("bytes_written", "sum"), params=("params", "sum"))
    grouped["flops_share"] = grouped["flops"] / grouped["flops"].sum() if grouped["flops"].sum() else 0.0
    return grouped.sort_values("flops", ascending=False).reset_index()

