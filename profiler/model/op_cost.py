"""Per-operator cost formulas, shared by the ONNX and the PyTorch paths.

Conventions (see docs/notes/model.md):

* 1 multiply-add (MAC) = 2 FLOPs.  ``macs`` counts only the multiply-adds of
  convolutions, matrix products and attention; ``flops`` counts everything,
  including bias adds, normalisation and activations.
* Bytes are *compulsory* DRAM traffic: every input (activations and weights)
  read once, every output written once, at ``dtype_bytes`` per element.
  Caches, re-reads and fusion are not modelled.
* Shapes are tuples of ints, NCHW-style for convolutions and pooling
  (batch, channels, *spatial).

Every function returns an :class:`OpCost`; none of them touch ONNX or torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

Shape = Sequence[int]

#: Bytes per element for the precision names used across the project.
DTYPE_BYTES = {
    "fp64": 8, "float64": 8, "double": 8,
    "fp32": 4, "float32": 4, "float": 4, "tf32": 4,
    "fp16": 2, "float16": 2, "half": 2,
    "bf16": 2, "bfloat16": 2,
    "fp8": 1, "float8": 1, "float8_e4m3fn": 1, "float8_e5m2": 1,
    "int8": 1, "uint8": 1, "bool": 1,
    "int16": 2, "int32": 4, "int64": 8,
    "int4": 0.5,
}

#: FLOPs per output element of unary activations and math ops.  Transcendentals
#: (exp, log, erf, tanh, sqrt, sin, ...) count as 1 FLOP; composite functions
#: count their decomposition (sigmoid = exp, add, div = 3).
ACTIVATION_FLOPS = {
    "relu": 1, "abs": 1, "neg": 1, "sign": 1, "ceil": 1, "floor": 1, "round": 1,
    "exp": 1, "log": 1, "sqrt": 1, "rsqrt": 1, "reciprocal": 1, "erf": 1, "tanh": 1,
    "sin": 1, "cos": 1, "tan": 1, "asin": 1, "acos": 1, "atan": 1,
    "sinh": 1, "cosh": 1, "asinh": 1, "acosh": 1, "atanh": 1, "not": 1, "isnan": 1, "isinf": 1,
    "leakyrelu": 2, "prelu": 2, "clip": 2, "relu6": 2, "hardtanh": 2, "thresholdedrelu": 1,
    "elu": 3, "selu": 4, "celu": 4,
    "sigmoid": 3, "hardsigmoid": 4, "hardswish": 5, "silu": 4, "swish": 4,
    "softplus": 3, "softsign": 3, "mish": 6, "tanhshrink": 2,
    "gelu": 5,  # 0.5 * x * (1 + erf(x / sqrt(2))): div, erf, add, mul, mul
    "gelu_tanh": 9,  # tanh approximation: x^3, 2 mul, add, tanh, add, 2 mul
    "fastgelu": 9, "biasgelu": 6,  # ONNX Runtime contrib ops: tanh GELU; bias add + GELU
    "shrink": 2,
}

#: FLOPs per output element of the element-wise binary ops.
BINARY_FLOPS = {
    "add": 1, "sub": 1, "mul": 1, "div": 1, "pow": 1, "max": 1, "min": 1, "mod": 1,
    "equal": 1, "greater": 1, "less": 1, "greaterorequal": 1, "lessorequal": 1,
    "and": 1, "or": 1, "xor": 1, "bitshift": 1, "where": 1,
}

#: Columns of the per-node / per-module cost frames (ONNX and PyTorch paths alike).
COST_COLUMNS = [
    "name", "op_type", "domain", "flops", "macs", "bytes_read", "bytes_written", "params",
    "intensity", "input_shapes", "output_shapes", "tc_eligible", "findings", "counted",
]

#: Tensor-Core friendly alignment (elements) of the channel / K / N dims per precision.
#: FP16/BF16: multiples of 8; INT8/FP8: 16; TF32 (the FP32 path on Ampere+): 4.
TENSOR_CORE_ALIGNMENT = {"fp16": 8, "bf16": 8, "tf32": 4, "fp32": 4, "int8": 16, "fp8": 16}


@dataclass(frozen=True)
class OpCost:
    """Work and traffic of one operator execution.

    flops: operations (1 MAC = 2 FLOPs); macs: multiply-adds of conv/matmul work;
    bytes_read / bytes_written: compulsory DRAM traffic in bytes; params: learnable
    parameter count; output_shape: when the formula had to work it out.
    """

    flops: float = 0.0
    macs: float = 0.0
    bytes_read: float = 0.0
    bytes_written: float = 0.0
    params: int = 0
    output_shape: tuple | None = None
    note: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def bytes(self) -> float:
        """Total bytes moved (read + written)."""
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP/byte (NaN when no bytes move)."""
        return self.flops / self.bytes if self.bytes else math.nan

    def __add__(self, other: "OpCost") -> "OpCost":
        notes = "; ".join(n for n in (self.note, other.note) if n)
        return OpCost(
            self.flops + other.flops,
            self.macs + other.macs,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
            self.params + other.params,
            other.output_shape or self.output_shape,
            notes,
        )

    def scaled(self, factor: float) -> "OpCost":
        """The same cost multiplied by ``factor`` (e.g. per direction, per step)."""
        return OpCost(self.flops * factor, self.macs * factor, self.bytes_read * factor,
                      self.bytes_written * factor, self.params, self.output_shape, self.note)


def dtype_bytes(precision: str | float | int) -> float:
    """Bytes per element for a precision name such as ``"fp16"`` or ``"torch.float16"``."""
    if isinstance(precision, (int, float)):
        return float(precision)
    key = str(precision).lower().replace("torch.", "").strip()
    if key not in DTYPE_BYTES:
        raise ValueError(f"unknown precision {precision!r}; known: {sorted(DTYPE_BYTES)}")
    return DTYPE_BYTES[key]


def numel(shape: Shape | None) -> int:
    """Number of elements of a shape (1 for a scalar ``()``)."""
    if shape is None:
        raise ValueError("shape unknown")
    return math.prod(int(d) for d in shape)


def broadcast_shapes(*shapes: Shape) -> tuple:
    """NumPy-style broadcast of several shapes."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {int(s[len(s) - rank + i]) for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError(f"shapes {shapes} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _per_dim(values, n: int, default: int) -> list[int]:
    if values is None or len(values) == 0:
        return [default] * n
    values = [int(v) for v in values]
    if len(values) == 1 and n > 1:
        return values * n
    return values


def _pads(pads, n: int) -> tuple[list[int], list[int]]:
    """Begin and end padding per spatial dim from ONNX ``[b1.., e1..]`` or torch ``[p1..]``."""
    if pads is None or len(pads) == 0:
        return [0] * n, [0] * n
    pads = [int(p) for p in pads]
    if len(pads) == 2 * n:
        return pads[:n], pads[n:]
    pads = _per_dim(pads, n, 0)
    return pads, pads


def conv_output_spatial(in_spatial: Shape, kernel: Shape, strides=None, pads=None,
                        dilations=None) -> tuple:
    """Output spatial size of a convolution or pooling window (floor mode)."""
    n = len(in_spatial)
    s = _per_dim(strides, n, 1)
    d = _per_dim(dilations, n, 1)
    pb, pe = _pads(pads, n)
    return tuple((int(in_spatial[i]) + pb[i] + pe[i] - d[i] * (int(kernel[i]) - 1) - 1) // s[i] + 1
                 for i in range(n))


def conv(input_shape: Shape, weight_shape: Shape, output_shape: Shape | None = None, *,
         strides=None, pads=None, dilations=None, groups: int = 1, bias: bool = True,
         dtype_bytes: float = 2) -> OpCost:
    """Convolution (1-D/2-D/3-D, grouped, depthwise, dilated, strided).

    input (N, Cin, *S), weight (Cout, Cin/groups, *K), output (N, Cout, *S_out).
    MACs = N * Cout * prod(S_out) * (Cin / groups) * prod(K); bias adds 1 FLOP per output.
    """
    n_batch, c_in = int(input_shape[0]), int(input_shape[1])
    c_out, c_in_per_group = int(weight_shape[0]), int(weight_shape[1])
    kernel = tuple(int(k) for k in weight_shape[2:])
    if output_shape is None:
        spatial = conv_output_spatial(input_shape[2:], kernel, strides, pads, dilations)
        output_shape = (n_batch, c_out, *spatial)
    out_elems = numel(output_shape)
    macs = out_elems * c_in_per_group * math.prod(kernel)
    note = ""
    if groups > 1 and c_in_per_group * groups != c_in:
        note = f"channels {c_in} != {c_in_per_group} x groups {groups}"
    return _weighted_cost(macs, input_shape, weight_shape, c_out if bias else 0, output_shape, dtype_bytes, note)


def _weighted_cost(macs: int, input_shape: Shape, weight_shape: Shape, bias_elems: int, output_shape: Shape,
                   dtype_bytes: float, note: str = "") -> OpCost:
    """Cost of a weighted op (convolution, transposed convolution): 2 FLOPs per MAC plus one bias add per output
    element when there is a bias; reads the input, weights and bias once, writes the output once."""
    out_elems = numel(output_shape)
    params = numel(weight_shape) + bias_elems
    return OpCost(
        flops=2 * macs + (out_elems if bias_elems else 0),
        macs=macs,
        bytes_read=(numel(input_shape) + params) * dtype_bytes,
        bytes_written=out_elems * dtype_bytes,
        params=params,
        output_shape=tuple(output_shape),
        note=note,
    )


def conv_transpose(input_shape: Shape, weight_shape: Shape, output_shape: Shape | None = None, *,
                   strides=None, pads=None, dilations=None, output_padding=None, groups: int = 1,
                   bias: bool = True, dtype_bytes: float = 2) -> OpCost:
    """Transposed convolution (deconvolution).

    input (N, Cin, *S), weight (Cin, Cout/groups, *K).  Every input element is
    multiplied into a K-window for Cout/groups output channels:
    MACs = N * Cin * prod(S) * (Cout / groups) * prod(K).
    """
    n_batch = int(input_shape[0])
    c_out_per_group = int(weight_shape[1])
    kernel = tuple(int(k) for k in weight_shape[2:])
    c_out = c_out_per_group * groups
    if output_shape is None:
        nd = len(kernel)
        s = _per_dim(strides, nd, 1)
        d = _per_dim(dilations, nd, 1)
        op = _per_dim(output_padding, nd, 0)
        pb, pe = _pads(pads, nd)
        spatial = tuple(s[i] * (int(input_shape[2 + i]) - 1) + op[i] + (kernel[i] - 1) * d[i] + 1
                        - pb[i] - pe[i] for i in range(nd))
        output_shape = (n_batch, c_out, *spatial)
    macs = numel(input_shape) * c_out_per_group * math.prod(kernel)
    return _weighted_cost(macs, input_shape, weight_shape, c_out if bias else 0, output_shape, dtype_bytes)


def matmul(a_shape: Shape, b_shape: Shape, *, bias_shape: Shape | None = None,
           trans_a: bool = False, trans_b: bool = False, b_is_weight: bool = False,
           dtype_bytes: float = 2) -> OpCost:
    """Matrix product with NumPy batching/broadcasting (MatMul, Gemm, Linear, bmm).

    a (..., M, K), b (..., K, N) after the optional transposes; a 1-D operand is
    promoted as in NumPy.  MACs = prod(batch) * M * N * K; a bias adds 1 FLOP per
    output element.  ``b_is_weight`` counts b (and the bias) as parameters.
    """
    a = [int(d) for d in a_shape]
    b = [int(d) for d in b_shape]
    a_vec, b_vec = len(a) == 1, len(b) == 1
    if a_vec:
        a = [1, a[0]]
    if b_vec:
        b = [b[0], 1]
    if trans_a:
        a[-1], a[-2] = a[-2], a[-1]
    if trans_b:
        b[-1], b[-2] = b[-2], b[-1]
    m, k = a[-2], a[-1]
    k2, n = b[-2], b[-1]
    if k != k2:
        raise ValueError(f"matmul inner dims differ: {a_shape} x {b_shape}")
    batch = broadcast_shapes(a[:-2], b[:-2])
    out = list(batch) + ([] if a_vec else [m]) + ([] if b_vec else [n])
    macs = math.prod(batch) * m * n * k
    out_elems = math.prod(batch) * m * n
    bias_elems = numel(bias_shape) if bias_shape is not None else 0
    params = (numel(b_shape) + bias_elems) if b_is_weight else 0
    return OpCost(
        flops=2 * macs + (out_elems if bias_shape is not None else 0),
        macs=macs,
        bytes_read=(numel(a_shape) + numel(b_shape) + bias_elems) * dtype_bytes,
        bytes_written=out_elems * dtype_bytes,
        params=params,
        output_shape=tuple(out),
        extra={"m": m, "n": n, "k": k, "batch": math.prod(batch)},
    )


def gemm(a_shape: Shape, b_shape: Shape, c_shape: Shape | None = None, *, trans_a: bool = False,
         trans_b: bool = False, b_is_weight: bool = True, dtype_bytes: float = 2) -> OpCost:
    """ONNX Gemm: Y = alpha * A' B' + beta * C (2-D)."""
    return matmul(a_shape, b_shape, bias_shape=c_shape, trans_a=trans_a, trans_b=trans_b,
                  b_is_weight=b_is_weight, dtype_bytes=dtype_bytes)


def attention(q_shape: Shape, k_shape: Shape, v_shape: Shape, *, num_heads: int | None = None,
              kv_num_heads: int | None = None, causal: bool = False, fused: bool = True,
              dtype_bytes: float = 2) -> OpCost:
    """Scaled dot-product attention softmax(Q K^T / sqrt(d)) V.

    Q (B, H, Lq, D) and K/V (B, Hkv, Lk, D/Dv), or 3-D (B, L, H*D) with ``num_heads``.
    MACs = B * H * Lq * Lk * (D + Dv); the scale and softmax add 6 FLOPs per score.
    ``causal`` halves the score work.  ``fused`` (flash-style) counts only Q, K, V
    and the output as traffic; unfused adds writing and reading the score matrix twice.
    """
    if len(q_shape) == 3:
        if not num_heads:
            raise ValueError("3-D attention inputs need num_heads")
        kvh = kv_num_heads or num_heads
        b, lq, e = (int(x) for x in q_shape)
        lk = int(k_shape[1])
        d = e // num_heads
        dv = int(v_shape[2]) // kvh
        h = num_heads
        out_shape = (b, lq, h * dv)
    else:
        b, h, lq, d = (int(x) for x in q_shape)
        lk = int(k_shape[-2])
        dv = int(v_shape[-1])
        out_shape = (b, h, lq, dv)
    scores = b * h * lq * lk * (0.5 if causal else 1.0)
    macs = scores * (d + dv)
    out_elems = numel(out_shape)
    read = numel(q_shape) + numel(k_shape) + numel(v_shape)
    written = out_elems
    if not fused:
        read += 2 * scores
        written += 2 * scores
    return OpCost(
        flops=2 * macs + 6 * scores,
        macs=macs,
        bytes_read=read * dtype_bytes,
        bytes_written=written * dtype_bytes,
        output_shape=out_shape,
        extra={"heads": h, "head_dim": d, "lq": lq, "lk": lk},
    )


#: FLOPs per element of normalisations, without / with the affine scale+shift (2 more).
#: batch (inference, folded to one scale and shift): 0 + 2; layer/group/instance:
#: centre (sub), mean (add), square, variance (add), normalise (mul) = 5; rms: 3.
NORM_FLOPS = {"batch": 0, "layer": 5, "group": 5, "instance": 5, "rms": 3, "lp": 3}


def normalization(shape: Shape, kind: str = "layer", *, channels: int | None = None,
                  normalized_numel: int | None = None, affine: bool = True,
                  dtype_bytes: float = 2) -> OpCost:
    """BatchNorm (inference), LayerNorm, GroupNorm, InstanceNorm, RMSNorm.

    ``channels`` sizes per-channel parameters (batch/group/instance norm);
    ``normalized_numel`` sizes LayerNorm/RMSNorm parameters (the normalised dims).
    BatchNorm reads 4 per-channel vectors (scale, bias, mean, var); only scale and
    bias are parameters.
    """
    if kind not in NORM_FLOPS:
        raise ValueError(f"unknown normalization {kind!r}")
    elems = numel(shape)
    c = channels if channels is not None else (int(shape[1]) if len(shape) > 1 else 1)
    if kind in ("layer", "rms", "lp"):
        per = normalized_numel if normalized_numel is not None else int(shape[-1])
        params = (2 * per if kind == "layer" else per) if affine else 0
        vectors = params
    else:
        params = 2 * c if affine else 0
        vectors = params + (2 * c if kind == "batch" else 0)
    fpe = NORM_FLOPS[kind] + ((1 if kind in ("rms", "lp") else 2) if affine else 0)
    if kind == "batch":
        fpe = 2
    return OpCost(
        flops=fpe * elems,
        bytes_read=(elems + vectors) * dtype_bytes,
        bytes_written=elems * dtype_bytes,
        params=params,
        output_shape=tuple(shape),
    )


def elementwise(output_shape: Shape, input_shapes: Iterable[Shape], *, flops_per_element: float = 1,
                dtype_bytes: float = 2, params: int = 0) -> OpCost:
    """Element-wise op: ``flops_per_element`` per output element; every input read once."""
    reads = sum(numel(s) for s in input_shapes)
    out = numel(output_shape)
    return OpCost(
        flops=flops_per_element * out,
        bytes_read=reads * dtype_bytes,
        bytes_written=out * dtype_bytes,
        params=params,
        output_shape=tuple(output_shape),
    )


def activation(kind: str, shape: Shape, *, dtype_bytes: float = 2, params: int = 0) -> OpCost:
    """Unary activation / math op; FLOPs per element from :data:`ACTIVATION_FLOPS`."""
    key = kind.lower().replace("_", "")
    if key not in ACTIVATION_FLOPS:
        raise KeyError(f"no FLOP count for activation {kind!r}")
    return elementwise(shape, [shape], flops_per_element=ACTIVATION_FLOPS[key],
                       dtype_bytes=dtype_bytes, params=params)


def binary(kind: str, output_shape: Shape, input_shapes: Sequence[Shape], *,
           dtype_bytes: float = 2) -> OpCost:
    """Binary (or variadic, e.g. Sum/Max) element-wise op: (n_inputs - 1) ops per output."""
    key = kind.lower()
    per = BINARY_FLOPS.get(key, 1) * max(1, len(input_shapes) - 1)
    return elementwise(output_shape, input_shapes, flops_per_element=per, dtype_bytes=dtype_bytes)


def pool(input_shape: Shape, output_shape: Shape, kernel: Shape, *, kind: str = "max",
         dtype_bytes: float = 2) -> OpCost:
    """Max / average / Lp pooling: one compare or add per window element per output,
    plus one divide per output for average (two more per window element for Lp)."""
    out = numel(output_shape)
    window = math.prod(int(k) for k in kernel)
    flops = out * window
    if kind == "avg":
        flops += out
    elif kind == "lp":
        flops += 2 * out * window
    return OpCost(
        flops=flops,
        bytes_read=numel(input_shape) * dtype_bytes,
        bytes_written=out * dtype_bytes,
        output_shape=tuple(output_shape),
    )


def global_pool(input_shape: Shape, *, kind: str = "avg", dtype_bytes: float = 2) -> OpCost:
    """Global pooling over all spatial dims: output (N, C, 1, ...)."""
    out = tuple(input_shape[:2]) + (1,) * (len(input_shape) - 2)
    return pool(input_shape, out, input_shape[2:], kind=kind, dtype_bytes=dtype_bytes)


def softmax(shape: Shape, *, log: bool = False, dtype_bytes: float = 2) -> OpCost:
    """Softmax: max (compare), subtract, exp, sum, divide = 5 FLOPs per element (+1 for log)."""
    return elementwise(shape, [shape], flops_per_element=6 if log else 5, dtype_bytes=dtype_bytes)


#: Reduce ops: FLOPs per input element, and per output element.
REDUCE_FLOPS = {
    "sum": (1, 0), "mean": (1, 1), "max": (1, 0), "min": (1, 0), "prod": (1, 0),
    "argmax": (1, 0), "argmin": (1, 0),
    "l1": (2, 0), "l2": (2, 1), "sumsquare": (2, 0), "logsum": (1, 1), "logsumexp": (3, 1),
}


def reduce(input_shape: Shape, output_shape: Shape, *, kind: str = "sum",
           dtype_bytes: float = 2) -> OpCost:
    """Reduce* ops: per input element 1 op (2 for L1/L2/SumSquare, 3 for LogSumExp);
    per output element 1 more for Mean (divide), L2 (sqrt), LogSum(Exp) (log)."""
    key = kind.lower()
    if key not in REDUCE_FLOPS:
        raise KeyError(f"no FLOP count for reduce {kind!r}")
    per_in, per_out = REDUCE_FLOPS[key]
    return OpCost(
        flops=per_in * numel(input_shape) + per_out * numel(output_shape),
        bytes_read=numel(input_shape) * dtype_bytes,
        bytes_written=numel(output_shape) * dtype_bytes,
        output_shape=tuple(output_shape),
    )


def resize(input_shape: Shape, output_shape: Shape, *, mode: str = "nearest",
           dtype_bytes: float = 2) -> OpCost:
    """Resize / Upsample.  Nearest: 0 FLOPs (a gather).  Linear over d resized dims:
    2^d weighted taps = 2^(d+1) - 1 FLOPs per output; cubic: 2 * 4^d - 1."""
    resized = sum(1 for a, b in zip(input_shape, output_shape) if int(a) != int(b))
    out = numel(output_shape)
    mode = mode.lower()
    if mode in ("linear", "bilinear", "trilinear"):
        per = 2 ** (resized + 1) - 1
    elif mode in ("cubic", "bicubic"):
        per = 2 * 4 ** resized - 1
    else:
        per = 0
    return OpCost(
        flops=per * out,
        bytes_read=numel(input_shape) * dtype_bytes,
        bytes_written=out * dtype_bytes,
        output_shape=tuple(output_shape),
    )


def data_movement(read_elements: float, written_elements: float, *, dtype_bytes: float = 2,
                  extra_read_bytes: float = 0, output_shape: Shape | None = None,
                  note: str = "") -> OpCost:
    """Copy-only ops (Concat, Transpose, Pad, Slice, Gather, Tile, Split, Cast, ...): 0 FLOPs."""
    return OpCost(
        flops=0,
        bytes_read=read_elements * dtype_bytes + extra_read_bytes,
        bytes_written=written_elements * dtype_bytes,
        output_shape=tuple(output_shape) if output_shape is not None else None,
        note=note,
    )


def view(output_shape: Shape | None = None) -> OpCost:
    """Metadata-only ops (Reshape, Flatten, Squeeze, Identity, Dropout at inference,
    shape arithmetic): no FLOPs, no traffic assumed."""
    return OpCost(output_shape=tuple(output_shape) if output_shape is not None else None,
                  note="view: no data movement assumed")


def recurrent(kind: str, seq_len: int, batch: int, input_size: int, hidden: int, *,
              directions: int = 1, dtype_bytes: float = 2) -> OpCost:
    """LSTM / GRU / RNN: per step and direction G gates of (input + hidden) x hidden
    MACs (G = 4, 3, 1); gate non-linearities are not counted."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[kind.lower()]
    macs = directions * seq_len * batch * gates * hidden * (input_size + hidden)
    params = directions * gates * hidden * (input_size + hidden + 2)
    return OpCost(
        flops=2 * macs,
        macs=macs,
        bytes_read=(seq_len * batch * input_size + params) * dtype_bytes,
        bytes_written=seq_len * batch * directions * hidden * dtype_bytes,
        params=params,
        output_shape=(seq_len, directions, batch, hidden),
    )


def tensor_core_alignment(precision: str) -> int | None:
    """Required multiple for channel/K/N dims on Tensor Cores, or None (e.g. FP64)."""
    return TENSOR_CORE_ALIGNMENT.get(str(precision).lower())


def conv_tensor_core_eligible(c_in: int, c_out: int, groups: int, precision: str) -> tuple[bool, str]:
    """Whether a convolution maps onto Tensor Cores at ``precision``, and why not.

    Per group, input and output channels must be multiples of the alignment
    (8 for FP16/BF16, 16 for INT8/FP8, 4 for TF32).  Depthwise convolutions never do.
    """
    align = tensor_core_alignment(precision)
    if align is None:
        return False, f"no Tensor Cores for {precision}"
    cin_g, cout_g = c_in // max(groups, 1), c_out // max(groups, 1)
    if groups > 1 and cin_g == 1:
        return False, "depthwise conv"
    bad = [f"{label}={v}" for label, v in (("Cin/g", cin_g), ("Cout/g", cout_g)) if v % align]
    if bad:
        return False, f"{', '.join(bad)} not a multiple of {align} for {precision}"
    return True, ""


def matmul_tensor_core_eligible(k: int, n: int, precision: str) -> tuple[bool, str]:
    """Whether a GEMM with inner dim K and output columns N is Tensor-Core aligned."""
    align = tensor_core_alignment(precision)
    if align is None:
        return False, f"no Tensor Cores for {precision}"
    bad = [f"{label}={v}" for label, v in (("K", k), ("N", n)) if v % align]
    if bad:
        return False, f"{', '.join(bad)} not a multiple of {align} for {precision}"
    return True, ""
