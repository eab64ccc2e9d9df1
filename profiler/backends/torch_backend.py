"""PyTorch backend: built-in architectures, a user's `module:function`, a TorchScript file, or an ONNX file run
through PyTorch (onnx2torch), at fp32/tf32/fp16/bf16 or under autocast, optionally channels_last,
torch.compile or CUDA graphs."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Optional

from profiler.backends.base import LoadedModel
from profiler.errors import CaptureError

ONNX_ELEM_TYPES = {1: "float32", 10: "float16", 11: "float64", 7: "int64", 6: "int32", 16: "bfloat16"}


def _dtype(precision: str):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)


class TorchModel(LoadedModel):
    backend = "torch"

    def __init__(self, cfg, device: str):
        import torch

        self.torch = torch
        self.cfg = cfg
        self.device = torch.device(device)
        self.info: dict = {}
        self.layer_ranges, self.layer_ranges_reason = cfg.effective_layer_ranges()
        model, kind, shape, task, info, dtype = self._load()
        self.info.update(info)
        self.task = cfg.task if cfg.task != "auto" else task
        prec = cfg.precision
        self.model_dtype = _dtype(prec)
        if prec in ("fp32", "amp", "amp-bf16"):
            self.model_dtype = torch.float32
        # fp32 means fp32: PyTorch lets cuDNN convolutions use TF32 by default; tf32 turns it on for both
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
            torch.backends.cudnn.allow_tf32 = prec == "tf32"
            torch.backends.cudnn.benchmark = True
        self.info["allow_tf32"] = prec == "tf32"
        self.is_script = isinstance(model, torch.jit.ScriptModule)
        model = model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        model = model.to(self.device)
        if prec in ("fp16", "bf16"):
            model = model.to(self.model_dtype)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.module = model
        from profiler.capture.pipeline import InputSpec

        self.input_spec = InputSpec(kind, tuple(shape), dtype, vocab=int(info.get("vocab", 0) or 0))
        if self.is_script and self.layer_ranges == "leaf":
            self.layer_ranges, self.layer_ranges_reason = "none", "TorchScript modules run no Python forward hooks"
        self.autocast_dtype = {"amp": torch.float16, "amp-bf16": torch.bfloat16}.get(prec)
        self.leaf_modules: dict = {}
        self.module_records: list = []
        self._graph = None
        self._forward = self.module
        if cfg.compile:
            self._forward = torch.compile(self.module)

    # ---- loading -------------------------------------------------------------------------------------------------
    def _load(self):
        cfg = self.cfg
        kind = cfg.model_kind()
        if kind == "builtin":
            from profiler.backends.models import build_builtin

            model, ikind, shape, task, info = build_builtin(cfg.model, cfg)
            dtype = "int64" if ikind == "tokens" else "float32"
            return model, ikind, shape, task, dict(info, model_source="builtin"), dtype
        if kind == "callable":
            return self._load_callable(cfg.model)
        if cfg.model.endswith(".onnx"):
            return self._load_onnx(cfg.model)
        return self._load_torchscript(cfg.model)

    def _spec_from_shape(self, shape, dtype="float32"):
        from profiler.capture.pipeline import is_image_shape

        shape = tuple(int(d) for d in shape)
        if dtype == "float32" and is_image_shape(shape) and shape[0] == 3:
            return "image", shape, dtype
        return "tensor", shape, dtype

    def _load_callable(self, spec: str):
        mod_name, fn_name = spec.split(":")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            mod = importlib.import_module(mod_name)
        except ImportError as exc:
            raise CaptureError(f"cannot import {mod_name!r} for --model {spec}: {exc}")
        fn = getattr(mod, fn_name, None)
        if fn is None:
            raise CaptureError(f"{mod_name} has no {fn_name!r} (for --model {spec})")
        out = fn()
        example = None
        if isinstance(out, tuple):
            out, example = out[0], (out[1] if len(out) > 1 else None)
        if not isinstance(out, self.torch.nn.Module):
            raise CaptureError(f"{spec}() returned {type(out).__name__}, not a torch.nn.Module")
        shape = self.cfg.input_shape or (list(example.shape[1:]) if example is not None else None) \
            or getattr(out, "input_shape", None) or [3, self.cfg.image_size, self.cfg.image_size]
        dtype = "int64" if example is not None and not example.is_floating_point() else "float32"
        kind, shape, dtype = self._spec_from_shape(shape, dtype)
        return out, kind, shape, "classification", {"model_source": "callable"}, dtype

    def _load_torchscript(self, path: str):
        try:
            model = self.torch.jit.load(path, map_location="cpu")
        except Exception as exc:  # noqa: BLE001
            raise CaptureError(f"{path} is not a TorchScript file torch.jit.load can read "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})")
        shape = self.cfg.input_shape or [3, self.cfg.image_size, self.cfg.image_size]
        kind, shape, dtype = self._spec_from_shape(shape)
        return model, kind, shape, "classification", {"model_source": "torchscript"}, dtype

    def _load_onnx(self, path: str):
        import onnx

        try:
            proto = onnx.load(path)
        except Exception as exc:  # noqa: BLE001
            raise CaptureError(f"{path} is not an ONNX model ({type(exc).__name__})")
        shape, dtype = onnx_input_shape(proto, self.cfg.input_shape, self.cfg.image_size)
        try:
            from onnx2torch import convert
        except ImportError:
            raise CaptureError("running an ONNX model with --backend torch needs onnx2torch (pip install onnx2torch),"
                               " or use --backend tensorrt where TensorRT is installed")
        try:
            model = convert(proto)
        except Exception as exc:  # noqa: BLE001
            raise CaptureError(f"onnx2torch cannot convert {path}: {str(exc).splitlines()[0][:160]}")
        kind, shape, dtype = self._spec_from_shape(shape, dtype)
        return model, kind, shape, "classification", {"model_source": "onnx2torch"}, dtype

    # ---- running -------------------------------------------------------------------------------------------------
    def autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def prepare(self, example, artifacts_dir: Optional[str] = None) -> None:
        """Records executed leaf modules and their shapes (modules.json); captures the CUDA graph if asked."""
        from profiler.capture.nvtx_ranges import executed_leaf_modules

        torch = self.torch
        if not self.is_script:
            with self.autocast():
                self.leaf_modules, calls = executed_leaf_modules(self.module, lambda: self.module(example))
            self.module_records = module_records(self.leaf_modules, calls)
        if self.cfg.cuda_graphs and self.device.type == "cuda":
            static_in = example.clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s), torch.inference_mode(), self.autocast():
                for _ in range(3):
                    self.module(static_in)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.inference_mode(), self.autocast(), torch.cuda.graph(g):
                static_out = self.module(static_in)
            self._graph = (g, static_in, static_out)

    def run(self, x):
        if self._graph is not None:
            g, static_in, static_out = self._graph
            static_in.copy_(x)
            g.replay()
            return static_out
        with self.autocast():
            return self._forward(x)

    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.module.parameters()))


def onnx_input_shape(proto, given=None, image_size: int = 224):
    """Per-sample input shape and host dtype of the first real graph input (initializers excluded)."""
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if not inputs:
        raise CaptureError("the ONNX model has no graph input")
    t = inputs[0].type.tensor_type
    dtype = ONNX_ELEM_TYPES.get(t.elem_type, "float32")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
    if given:
        return list(given), dtype
    per_sample = dims[1:]
    if not per_sample:
        return [], dtype
    if len(per_sample) == 3 and per_sample[0] in (1, 3, None):
        per_sample = [per_sample[0] or 3, per_sample[1] or image_size, per_sample[2] or image_size]
    if any(d is None for d in per_sample):
        raise CaptureError(f"the ONNX input {inputs[0].name!r} has dynamic dims {dims}: give --input-shape "
                           "(per-sample dims, e.g. 3,224,224)")
    return per_sample, dtype


# ---- modules.json ------------------------------------------------------------------------------------------------
ATTRS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "in_features",
         "out_features", "num_features", "normalized_shape", "eps", "num_heads", "embed_dim", "kdim", "vdim",
         "batch_first", "num_embeddings", "embedding_dim", "output_size", "ceil_mode", "scale_factor", "mode",
         "approximate", "inplace", "dim", "p")


def _jsonable(v):
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


def layer_attributes(mod) -> dict:
    out = {}
    for a in ATTRS:
        if hasattr(mod, a):
            v = getattr(mod, a)
            if callable(v) and not isinstance(v, (int, float, tuple, list, str, bool)):
                continue
            out[a] = _jsonable(v)
    if hasattr(mod, "bias") and not callable(getattr(mod, "bias")):
        out["bias"] = getattr(mod, "bias") is not None
    if hasattr(mod, "in_proj_bias"):
        out["bias"] = mod.in_proj_bias is not None
    w = getattr(mod, "weight", None)
    if w is not None and hasattr(w, "shape"):
        out["weight_shape"] = list(w.shape)
    n = sum(p.numel() for p in mod.parameters(recurse=True))
    out["parameters"] = int(n)
    if type(mod).__name__ == "TransformerEncoderLayer":
        sa = mod.self_attn
        out.update(embed_dim=sa.embed_dim, num_heads=sa.num_heads, dim_feedforward=mod.linear1.out_features,
                   norm_first=bool(getattr(mod, "norm_first", False)), batch_first=bool(sa.batch_first),
                   activation="gelu" if getattr(mod, "activation_relu_or_gelu", 1) == 2 else "relu")
    return out


def module_records(leaves: dict, calls: list) -> list:
    """One record per executed leaf module, in first-call order; `calls` > 1 when a module runs several times
    (e.g. torchvision's ReLU in a Bottleneck), with the shapes of each call in `per_call`."""
    by_name: dict[str, dict] = {}
    order = []
    for c in calls:
        name = c["name"]
        rec = by_name.get(name)
        if rec is None:
            mod = leaves[name]
            rec = {"name": name, "type": type(mod).__name__, "input_shapes": c["inputs"],
                   "output_shapes": c["outputs"], "dtype": c["dtype"], "calls": 0}
            rec.update(layer_attributes(mod))
            by_name[name] = rec
            order.append(name)
        rec["calls"] += 1
        if rec["calls"] > 1:
            per = rec.setdefault("per_call", [{"input_shapes": rec["input_shapes"],
                                               "output_shapes": rec["output_shapes"]}])
            per.append({"input_shapes": c["inputs"], "output_shapes": c["outputs"]})
    return [by_name[n] for n in order]


def load(cfg, device: str) -> TorchModel:
    return TorchModel(cfg, device)
