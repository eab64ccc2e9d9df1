"""Costs of PyTorch runs: leaf-module records (modules.json) and emit_nvtx op ranges.

* ``module_costs(records)``: one row per call of each leaf module in a run's
  modules.json (``name`` = module path = the NVTX range text, ``type`` = class name,
  ``input_shapes``/``output_shapes``, ``dtype``, layer attributes, ``per_call`` when a
  module runs several times).
* ``nvtx_op_costs(texts)``: one row per ``emit_nvtx`` range text such as
  ``aten::addmm, op_id = 7, sizes = [[1000], [8, 2048], [2048, 1000], [], []]``.
  ``sizes`` lists tensor shapes; non-tensor arguments are ``[]`` (PyTorch records
  no values for them), so strides and paddings are only used when present.

Formulas come from :mod:`profiler.model.op_cost`; the frames have the same
columns as :func:`profiler.model.onnx_cost.onnx_node_costs` plus ``call``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from profiler.model import op_cost as oc

COLUMNS = oc.COST_COLUMNS + ["call"]

_ACTIVATION_TYPES = {
    "ReLU": "relu", "ReLU6": "relu6", "LeakyReLU": "leakyrelu", "PReLU": "prelu", "ELU": "elu",
    "SELU": "selu", "CELU": "celu", "GELU": "gelu", "SiLU": "silu", "Mish": "mish", "Sigmoid": "sigmoid",
    "Tanh": "tanh", "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid", "Hardtanh": "hardtanh",
    "Softplus": "softplus", "Softsign": "softsign", "Tanhshrink": "tanhshrink", "Threshold": "thresholdedrelu",
    "Hardshrink": "shrink", "Softshrink": "shrink",
}
_VIEW_TYPES = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "Identity", "Flatten",
               "Unflatten"}


def _kind_bytes(record: dict, precision: str | None) -> float:
    return oc.dtype_bytes(precision or record.get("dtype") or "float32")


def _tuple(value, n: int) -> list[int]:
    if value is None:
        return [1] * n
    if isinstance(value, (int, float)):
        return [int(value)] * n
    return [int(v) for v in value]


def _conv_module(rec, ins, outs, width, precision, transposed=False):
    x = ins[0]
    nd = len(x) - 2
    k = _tuple(rec.get("kernel_size"), nd)
    groups = int(rec.get("groups", 1) or 1)
    c_in, c_out = int(rec.get("in_channels", x[1])), int(rec["out_channels"])
    bias = bool(rec.get("bias", True))
    padding = rec.get("padding", 0)
    out = outs[0] if outs else None
    if isinstance(padding, str):
        padding = None if out is not None else ([(kk - 1) // 2 for kk in k] if padding == "same" else 0)
    if transposed:
        weight = rec.get("weight_shape") or [c_in, c_out // groups, *k]
        cost = oc.conv_transpose(x, weight, out, strides=_tuple(rec.get("stride"), nd),
                                 pads=_tuple(padding, nd) if padding is not None else None,
                                 dilations=_tuple(rec.get("dilation"), nd), groups=groups, bias=bias,
                                 dtype_bytes=width)
    else:
        weight = rec.get("weight_shape") or [c_out, c_in // groups, *k]
        cost = oc.conv(x, weight, out, strides=_tuple(rec.get("stride"), nd),
                       pads=_tuple(padding, nd) if padding is not None else None,
                       dilations=_tuple(rec.get("dilation"), nd), groups=groups, bias=bias, dtype_bytes=width)
    tc = oc.conv_tensor_core_eligible(c_in, c_out, groups, precision)
    return cost, tc


def _linear_module(rec, ins, outs, width, precision):
    x = ins[0]
    n_in, n_out = int(rec.get("in_features", x[-1])), int(rec["out_features"])
    bias = (n_out,) if rec.get("bias", True) else None
    cost = oc.matmul(x, (n_in, n_out), bias_shape=bias, b_is_weight=True, dtype_bytes=width)
    return cost, oc.matmul_tensor_core_eligible(n_in, n_out, precision)


def _mha_module(rec, ins, outs, width, precision):
    """nn.MultiheadAttention: Q/K/V projections, attention core, output projection (unfused traffic)."""
    e, h = int(rec["embed_dim"]), int(rec["num_heads"])
    kdim, vdim = int(rec.get("kdim") or e), int(rec.get("vdim") or e)
    q = ins[0]
    k = ins[1] if len(ins) > 1 else q
    v = ins[2] if len(ins) > 2 else k
    batch_first = bool(rec.get("batch_first", False))
    if len(q) == 2:  # unbatched (L, E)
        q, k, v = [1, *q], [1, *k], [1, *v]
        batch_first = True
    if batch_first:
        n, lq, lk = q[0], q[1], k[1]
    else:
        n, lq, lk = q[1], q[0], k[0]
    bias = (e,) if rec.get("bias", True) else None
    d = e // h
    cost = (oc.matmul((n, lq, e), (e, e), bias_shape=bias, b_is_weight=True, dtype_bytes=width)
            + oc.matmul((n, lk, kdim), (kdim, e), bias_shape=bias, b_is_weight=True, dtype_bytes=width)
            + oc.matmul((n, lk, vdim), (vdim, e), bias_shape=bias, b_is_weight=True, dtype_bytes=width)
            + oc.attention((n, h, lq, d), (n, h, lk, d), (n, h, lk, d), dtype_bytes=width)
            + oc.matmul((n, lq, e), (e, e), bias_shape=bias, b_is_weight=True, dtype_bytes=width))
    return cost, oc.matmul_tensor_core_eligible(d, d, precision)


def _encoder_layer_module(rec, ins, outs, width, precision):
    """nn.TransformerEncoderLayer run as one leaf (PyTorch's fused fast path): self-attention, 2 LayerNorms, FFN with
    its activation, 2 residual adds. `batch_first` as recorded (PyTorch's default, False, when absent)."""
    x = ins[0]
    e, f = int(rec["embed_dim"]), int(rec["dim_feedforward"])
    attn, _ = _mha_module(rec, [x, x, x], [], width, precision)
    tokens = oc.numel(x) // e
    cost = (attn
            + oc.normalization(x, "layer", normalized_numel=e, dtype_bytes=width).scaled(2)
            + oc.matmul((tokens, e), (e, f), bias_shape=(f,), b_is_weight=True, dtype_bytes=width)
            + oc.activation(str(rec.get("activation") or "relu"), (tokens, f), dtype_bytes=width)
            + oc.matmul((tokens, f), (f, e), bias_shape=(e,), b_is_weight=True, dtype_bytes=width)
            + oc.elementwise(x, [x, x], dtype_bytes=width).scaled(2))
    return cost, oc.matmul_tensor_core_eligible(e, f, precision)


def _norm_module(kind):
    def formula(rec, ins, outs, width, precision):
        x = ins[0]
        if kind in ("layer", "rms"):
            shape = rec.get("normalized_shape") or [x[-1]]
            shape = [shape] if isinstance(shape, int) else shape
            affine = rec.get("weight_shape") is not None or bool(rec.get("parameters"))
            return oc.normalization(x, kind, normalized_numel=math.prod(int(s) for s in shape),
                                    affine=affine, dtype_bytes=width), None
        channels = int(rec.get("num_features") or rec.get("num_channels") or (x[1] if len(x) > 1 else x[0]))
        affine = rec.get("weight_shape") is not None or bool(rec.get("parameters")) or kind == "batch"
        return oc.normalization(x, kind, channels=channels, affine=affine, dtype_bytes=width), None
    return formula


def _pool_module(kind, adaptive=False):
    def formula(rec, ins, outs, width, precision):
        x, out = ins[0], outs[0]
        nd = len(out) - 2 if len(out) == len(x) else len(out)
        in_sp, out_sp = x[-nd:], out[-nd:]
        if adaptive:
            kernel = [math.ceil(int(a) / int(b)) for a, b in zip(in_sp, out_sp)]
        else:
            kernel = _tuple(rec.get("kernel_size"), nd)
        return oc.pool(x, out, kernel, kind=kind, dtype_bytes=width), None
    return formula


def _activation_module(rec, ins, outs, width, precision):
    key = _ACTIVATION_TYPES[rec["type"]]
    if key == "gelu" and rec.get("approximate") == "tanh":
        key = "gelu_tanh"
    return oc.activation(key, ins[0], dtype_bytes=width, params=int(rec.get("parameters", 0) or 0)), None


def _softmax_module(rec, ins, outs, width, precision):
    return oc.softmax(ins[0], log=rec["type"] == "LogSoftmax", dtype_bytes=width), None


def _upsample_module(rec, ins, outs, width, precision):
    mode = rec.get("mode") or ("bilinear" if "Bilinear" in rec["type"] else "nearest")
    return oc.resize(ins[0], outs[0], mode=mode, dtype_bytes=width), None


def _embedding_module(rec, ins, outs, width, precision):
    out = outs[0]
    return oc.OpCost(bytes_read=oc.numel(out) * width + oc.numel(ins[0]) * 8,
                     bytes_written=oc.numel(out) * width, params=int(rec.get("parameters", 0) or 0),
                     output_shape=tuple(out)), None


def _view_module(rec, ins, outs, width, precision):
    return oc.view(outs[0] if outs else None), None


MODULE_FORMULAS = {
    **{f"Conv{d}d": _conv_module for d in (1, 2, 3)},
    **{f"ConvTranspose{d}d": (lambda *a: _conv_module(*a, transposed=True)) for d in (1, 2, 3)},
    "Linear": _linear_module, "NonDynamicallyQuantizableLinear": _linear_module,
    "MultiheadAttention": _mha_module, "MultiheadActivation": _mha_module,
    "TransformerEncoderLayer": _encoder_layer_module,
    **{f"BatchNorm{d}d": _norm_module("batch") for d in (1, 2, 3)}, "SyncBatchNorm": _norm_module("batch"),
    **{f"InstanceNorm{d}d": _norm_module("instance") for d in (1, 2, 3)},
    "LayerNorm": _norm_module("layer"), "GroupNorm": _norm_module("group"), "RMSNorm": _norm_module("rms"),
    **{f"MaxPool{d}d": _pool_module("max") for d in (1, 2, 3)},
    **{f"AvgPool{d}d": _pool_module("avg") for d in (1, 2, 3)},
    **{f"AdaptiveAvgPool{d}d": _pool_module("avg", adaptive=True) for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": _pool_module("max", adaptive=True) for d in (1, 2, 3)},
    **{name: _activation_module for name in _ACTIVATION_TYPES},
    "Softmax": _softmax_module, "LogSoftmax": _softmax_module, "Softmin": _softmax_module,
    "Upsample": _upsample_module, "UpsamplingNearest2d": _upsample_module,
    "UpsamplingBilinear2d": _upsample_module,
    "Embedding": _embedding_module,
    **{name: _view_module for name in _VIEW_TYPES},
}


def module_cost(record: dict, precision: str | None = None, call: int = 0) -> tuple[oc.OpCost, bool | None]:
    """Cost of one call of a leaf module record, and its Tensor-Core eligibility (None if n/a).

    precision: width of tensors ("fp16", ...); default the record's ``dtype``.
    Raises KeyError for module types without a formula.
    """
    formula = MODULE_FORMULAS.get(record.get("type"))
    if formula is None:
        raise KeyError(f"no cost formula for module type {record.get('type')}")
    calls = record.get("per_call") or [record]
    shapes = calls[min(call, len(calls) - 1)]
    ins = [list(s) for s in shapes.get("input_shapes") or []]
    outs = [list(s) for s in shapes.get("output_shapes") or []]
    width = _kind_bytes(record, precision)
    tc_precision = (precision or _precision_name(record.get("dtype"))).lower()
    cost, tc = formula(record, ins, outs, width, tc_precision)
    return cost, (tc[0] if isinstance(tc, tuple) else tc)


def _precision_name(dtype: str | None) -> str:
    return {"float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32", "float": "fp32",
            "int8": "int8"}.get(str(dtype or "float32").replace("torch.", ""), "fp32")


def module_costs(records: Iterable[dict], precision: str | None = None) -> pd.DataFrame:
    """One row per call of each leaf module (``call`` = 0, 1, ... in execution order).

    Columns as :func:`profiler.model.onnx_cost.onnx_node_costs` plus ``call``; ``params`` is
    counted on the first call only; unknown module types keep NaN costs and ``counted=False``.
    """
    rows = []
    for rec in records:
        n_calls = max(1, int(rec.get("calls", 1) or 1), len(rec.get("per_call") or []))
        for call in range(n_calls):
            shapes = (rec.get("per_call") or [rec])[min(call, len(rec.get("per_call") or [rec]) - 1)]
            row = {"name": rec.get("name", ""), "op_type": rec.get("type", ""), "domain": "torch.nn",
                   "input_shapes": shapes.get("input_shapes"), "output_shapes": shapes.get("output_shapes"),
                   "call": call, "params": 0}
            try:
                cost, tc = module_cost(rec, precision, call)
            except KeyError as exc:
                row.update(_uncounted(str(exc).strip("'\"")))
            except (ValueError, IndexError, TypeError) as exc:
                row.update(_uncounted(f"not counted: {type(exc).__name__}: {exc}"))
            else:
                row.update(_cost_fields(cost, tc))
                row["params"] = int(rec.get("parameters", cost.params) or 0) if call == 0 else 0
                findings = _module_findings(rec, cost, tc)
                row["findings"] = "; ".join(findings)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _cost_fields(cost: oc.OpCost, tc) -> dict:
    return {"flops": cost.flops, "macs": cost.macs, "bytes_read": cost.bytes_read,
            "bytes_written": cost.bytes_written, "intensity": cost.intensity, "tc_eligible": tc,
            "findings": cost.note, "counted": True}


def _uncounted(reason: str) -> dict:
    return {"flops": math.nan, "macs": math.nan, "bytes_read": math.nan, "bytes_written": math.nan,
            "intensity": math.nan, "tc_eligible": None, "findings": reason, "counted": False}


def _module_findings(rec: dict, cost: oc.OpCost, tc) -> list[str]:
    out = [cost.note] if cost.note else []
    t = rec.get("type", "")
    if t.startswith("Conv") and not t.startswith("ConvTranspose"):
        groups = int(rec.get("groups", 1) or 1)
        if groups > 1 and groups == int(rec.get("in_channels", 0)):
            out.append("depthwise conv: low arithmetic intensity, memory-bound")
        k = rec.get("kernel_size")
        if k is not None and all(int(v) == 1 for v in ([k] if isinstance(k, int) else k)):
            out.append("1x1 (pointwise) conv: lower arithmetic intensity than larger kernels")
    if tc is False:
        out.append("Tensor Cores: not eligible (channel / K / N dims not aligned)")
    return out


def load_modules_json(path: str | Path) -> list[dict]:
    """Records from a run's modules.json (a list, or {"modules": [...]})."""
    data = json.loads(Path(path).read_text())
    return data.get("modules", []) if isinstance(data, dict) else list(data)


# --- emit_nvtx op ranges ----------------------------------------------------------------------

_SIZES = re.compile(r"sizes\s*=\s*\[")


def parse_nvtx_op(text: str) -> tuple[str, list] | None:
    """``("aten::conv2d", [[8, 3, 224, 224], [64, 3, 7, 7], [], ...])`` from an emit_nvtx range
    text, or None when the text has no ``sizes = [...]`` part."""
    text = str(text)
    match = _SIZES.search(text)
    if not match:
        return None
    start = match.end() - 1
    depth = 0
    for i in range(start, len(text)):
        depth += {"[": 1, "]": -1}.get(text[i], 0)
        if depth == 0:
            try:
                sizes = ast.literal_eval(text[start:i + 1])
            except (ValueError, SyntaxError):
                return None
            return text.split(",", 1)[0].strip(), [list(s) if isinstance(s, (list, tuple)) else [] for s in sizes]
    return None


def _arg(sizes, i):
    return sizes[i] if len(sizes) > i and sizes[i] else None


def _aten_conv(op, s, width, precision):
    x, w = s[0], s[1]
    nd = len(x) - 2
    values = [v if v and len(v) == nd else None for v in (_arg(s, 3), _arg(s, 4), _arg(s, 5))]
    stride, pad, dil = values
    note = ""
    if stride is None and pad is None:
        note = "stride/padding not recorded: output size assumed equal to input size"
    transposed = "transpose" in op
    if transposed:
        out = None if stride is not None else [x[0], w[1], *x[2:]]
        cost = oc.conv_transpose(x, w, out, strides=stride, pads=pad, dilations=dil,
                                 bias=_arg(s, 2) is not None, dtype_bytes=width)
        tc = oc.conv_tensor_core_eligible(x[1], w[1], 1, precision)
    else:
        groups = max(1, int(x[1]) // int(w[1]))
        out = None if stride is not None or pad is not None else [x[0], w[0], *x[2:]]
        cost = oc.conv(x, w, out, strides=stride, pads=pad, dilations=dil, groups=groups,
                       bias=_arg(s, 2) is not None, dtype_bytes=width)
        tc = oc.conv_tensor_core_eligible(x[1], w[0], groups, precision)
    if note:
        cost = oc.OpCost(cost.flops, cost.macs, cost.bytes_read, cost.bytes_written, cost.params,
                         cost.output_shape, note)
    return cost, tc[0]


def _aten_matmul(op, s, width, precision):
    if op == "linear":
        x, w = s[0], s[1]
        w_t = [w[1], w[0]] if len(w) == 2 else w
        cost = oc.matmul(x, w_t, bias_shape=_arg(s, 2), b_is_weight=True, dtype_bytes=width)
    elif op in ("addmm", "baddbmm", "addbmm"):
        cost = oc.matmul(s[1], s[2], bias_shape=_arg(s, 0), dtype_bytes=width)
    else:  # mm, bmm, matmul
        cost = oc.matmul(s[0], s[1], dtype_bytes=width)
    return cost, oc.matmul_tensor_core_eligible(cost.extra["k"], cost.extra["n"], precision)[0]


def _aten_attention(op, s, width, precision):
    q, k, v = s[0], s[1], s[2]
    if op in ("flash_attention_forward", "efficient_attention_forward"):  # (B, L, H, D) layout
        q, k, v = ([t[0], t[2], t[1], t[3]] for t in (q, k, v))
    cost = oc.attention(q, k, v, dtype_bytes=width)
    return cost, oc.matmul_tensor_core_eligible(q[-1], q[-1], precision)[0]


def _aten_norm(kind):
    def formula(op, s, width, precision):
        x = s[0]
        if kind in ("layer", "rms"):
            weight = _arg(s, 2)
            normalized = _arg(s, 1)
            per = oc.numel(weight) if weight else (oc.numel(normalized) if normalized else x[-1])
            return oc.normalization(x, kind, normalized_numel=per, affine=weight is not None,
                                    dtype_bytes=width), None
        return oc.normalization(x, kind, channels=x[1] if len(x) > 1 else 1, dtype_bytes=width), None
    return formula


def _aten_softmax(op, s, width, precision):
    return oc.softmax(s[0], log=op.startswith("log"), dtype_bytes=width), None


_ATEN_UNARY = {
    "relu": "relu", "relu6": "relu6", "hardtanh": "hardtanh", "gelu": "gelu", "silu": "silu",
    "sigmoid": "sigmoid", "tanh": "tanh", "hardswish": "hardswish", "hardsigmoid": "hardsigmoid",
    "leaky_relu": "leakyrelu", "elu": "elu", "exp": "exp", "log": "log", "sqrt": "sqrt", "rsqrt": "rsqrt",
    "neg": "neg", "abs": "abs", "clamp": "clip", "clamp_min": "relu", "clamp_max": "relu",
    "threshold": "thresholdedrelu", "erf": "erf", "sin": "sin", "cos": "cos", "mish": "mish",
    "softplus": "softplus", "reciprocal": "reciprocal",
}
_ATEN_BINARY = {"add", "sub", "rsub", "mul", "div", "maximum", "minimum", "pow", "where", "eq", "ne", "gt",
                "lt", "ge", "le", "fmod", "remainder", "addcmul", "addcdiv", "lerp"}
_ATEN_VIEWS = {"view", "reshape", "_reshape_alias", "flatten", "permute", "transpose", "t", "expand",
               "expand_as", "unsqueeze", "squeeze", "slice", "select", "as_strided", "detach", "alias",
               "empty", "empty_like", "empty_strided", "zeros", "ones", "split", "chunk", "unbind", "narrow",
               "unsafe_view", "resolve_conj", "resolve_neg", "lift_fresh", "dropout", "native_dropout",
               "feature_dropout", "identity", "contiguous_view", "view_as", "numpy_t", "split_with_sizes",
               "unflatten", "set_", "result_type", "item", "is_nonzero", "size", "dim"}


def _aten_unary(op, s, width, precision):
    return oc.activation(_ATEN_UNARY[op], s[0], dtype_bytes=width), None


def _aten_binary(op, s, width, precision):
    shapes = [tuple(t) for t in s if t]
    out = oc.broadcast_shapes(*shapes) if shapes else ()
    return oc.elementwise(out, shapes, dtype_bytes=width), None


def _aten_copy(op, s, width, precision):
    src = s[1] if op == "copy" and len(s) > 1 and s[1] else s[0]
    return oc.data_movement(oc.numel(src), oc.numel(src), dtype_bytes=width, output_shape=src), None


def _aten_cat(op, s, width, precision):
    shapes = [t for t in s if t]
    if not shapes:
        raise ValueError("tensor list sizes not recorded")
    elems = sum(oc.numel(t) for t in shapes)
    return oc.data_movement(elems, elems, dtype_bytes=width), None


def _aten_reduce_like(op, s, width, precision):
    """Pooling / reductions: output size is not recorded; counts one op per input element
    and the input read (approximate)."""
    x = s[0]
    return oc.OpCost(flops=oc.numel(x), bytes_read=oc.numel(x) * width,
                     note="approximate: output size not recorded"), None


def _aten_embedding(op, s, width, precision):
    weight, idx = s[0], s[1]
    out = [*idx, weight[-1]]
    return oc.OpCost(bytes_read=oc.numel(out) * width + oc.numel(idx) * 8, bytes_written=oc.numel(out) * width,
                     output_shape=tuple(out)), None


def _aten_view(op, s, width, precision):
    return oc.view(), None


ATEN_FORMULAS = {
    **{name: _aten_conv for name in ("conv1d", "conv2d", "conv3d", "convolution", "cudnn_convolution",
                                      "mkldnn_convolution", "convolution_overrideable", "conv_transpose1d",
                                      "conv_transpose2d", "conv_transpose3d", "cudnn_convolution_transpose",
                                      "cudnn_convolution_relu", "cudnn_convolution_add_relu")},
    **{name: _aten_matmul for name in ("linear", "addmm", "mm", "bmm", "matmul", "baddbmm", "addbmm")},
    **{name: _aten_attention for name in ("scaled_dot_product_attention", "scaled_dot_product_flash_attention",
                                           "scaled_dot_product_efficient_attention",
                                           "scaled_dot_product_cudnn_attention",
                                           "scaled_dot_product_flash_attention_for_cpu",
                                           "flash_attention_forward", "efficient_attention_forward")},
    **{name: _aten_norm("layer") for name in ("layer_norm", "native_layer_norm")},
    **{name: _aten_norm("rms") for name in ("rms_norm", "fused_rms_norm")},
    **{name: _aten_norm("batch") for name in ("batch_norm", "native_batch_norm", "cudnn_batch_norm",
                                               "batch_norm_impl_index", "native_batch_norm_legit_no_training",
                                               "native_batch_norm_legit")},
    **{name: _aten_norm("group") for name in ("group_norm", "native_group_norm")},
    "instance_norm": _aten_norm("instance"),
    **{name: _aten_softmax for name in ("softmax", "log_softmax", "safe_softmax")},
    **{name: _aten_unary for name in _ATEN_UNARY},
    **{name: _aten_binary for name in _ATEN_BINARY},
    **{name: _aten_copy for name in ("copy", "clone", "contiguous", "to_copy", "to")},
    **{name: _aten_cat for name in ("cat", "concat", "concatenate", "stack")},
    **{name: _aten_reduce_like for name in ("max_pool2d", "max_pool2d_with_indices", "avg_pool2d",
                                             "adaptive_avg_pool2d", "adaptive_avg_pool1d", "mean", "sum",
                                             "amax", "max_pool1d", "max_pool3d", "avg_pool1d", "avg_pool3d",
                                             "adaptive_max_pool2d")},
    "embedding": _aten_embedding,
    **{name: _aten_view for name in _ATEN_VIEWS},
}


def aten_op_key(op: str) -> str:
    """'aten::_softmax' -> 'softmax', 'aten::add_' -> 'add', 'aten::cudnn_convolution' kept."""
    name = op.split("::", 1)[-1].strip()
    name = name.lstrip("_")
    if name.endswith("_") and name not in ("set_",):
        name = name.rstrip("_")
    return name


def nvtx_op_cost(text: str, precision: str = "fp16") -> tuple[oc.OpCost, bool | None]:
    """Cost of one emit_nvtx op range and its Tensor-Core eligibility.

    Raises KeyError for ops without a formula and ValueError for texts without sizes.
    """
    parsed = parse_nvtx_op(text)
    if parsed is None:
        raise ValueError(f"no 'sizes = [...]' in {str(text)[:60]!r}")
    op, sizes = parsed
    key = aten_op_key(op)
    formula = ATEN_FORMULAS.get(key)
    if formula is None:
        raise KeyError(f"no cost formula for {op}")
    if not sizes or not sizes[0]:
        if formula is _aten_view:
            return oc.view(), None
        raise ValueError(f"{op}: input sizes not recorded")
    return formula(key, sizes, oc.dtype_bytes(precision), precision.lower())


def nvtx_op_costs(texts: Iterable[str], precision: str = "fp16") -> pd.DataFrame:
    """One row per distinct emit_nvtx range text (``name`` = the text, ``op_type`` = the aten op)."""
    rows = []
    for text in dict.fromkeys(str(t) for t in texts):
        parsed = parse_nvtx_op(text)
        row = {"name": text, "op_type": parsed[0] if parsed else text.split(",", 1)[0].strip(),
               "domain": "aten", "input_shapes": parsed[1] if parsed else None, "output_shapes": None,
               "params": 0, "call": 0}
        try:
            cost, tc = nvtx_op_cost(text, precision)
        except (KeyError, ValueError) as exc:
            row.update(_uncounted(str(exc).strip("'\"")))
        except (IndexError, TypeError) as exc:
            row.update(_uncounted(f"not counted: {type(exc).__name__}: {exc}"))
        else:
            row.update(_cost_fields(cost, tc))
            row["params"] = cost.params
            row["output_shapes"] = [list(cost.output_shape)] if cost.output_shape else None
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
