"""What one capture does: a plain dataclass shared by the CLI, the runner and the workload process (as JSON)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Optional

from profiler.errors import CaptureError

NVTX_DOMAIN = "trtscope"
BACKENDS = ("torch", "tensorrt")
TORCH_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "amp", "amp-bf16")
TRT_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "best")
PRECISIONS = tuple(dict.fromkeys(TORCH_PRECISIONS + TRT_PRECISIONS))
LAYER_RANGES = ("leaf", "none", "emit_nvtx")
PLANTS = ("pageable_upload", "round_trip", "constant_upload")
TASKS = ("auto", "classification", "detection")
GPU_METRICS = ("auto", "on", "off")


@dataclass
class CaptureConfig:
    backend: str = "torch"
    model: str = "resnet50"
    precision: str = "fp32"
    batch: int = 8
    iterations: int = 30
    warmup: int = 10
    pinned: bool = False
    out: Optional[str] = None
    name: Optional[str] = None
    layer_ranges: str = "leaf"
    plant: list = field(default_factory=list)
    task: str = "auto"
    preprocess_device: str = "cpu"
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    sync_after_inference: bool = True
    input_shape: Optional[list] = None  # per-sample shape for user models without one, e.g. [3, 224, 224]
    image_size: int = 224
    # transformer encoder built in code
    d_model: int = 512
    nhead: Optional[int] = None
    num_layers: int = 4
    seq_len: int = 128
    # TensorRT
    calibrator: str = "entropy"
    calib_batches: int = 4
    sparsity: bool = False
    engine_cache: Optional[str] = None
    trtexec: bool = False
    workspace_mb: int = 4096
    # capture
    gpu_metrics: str = "auto"
    gpu_metrics_frequency: int = 1000
    overhead_iterations: int = 0  # >0: also measure NVTX on/off overhead in the unprofiled process
    keep_rep: bool = True
    seed: int = 0
    device: str = "cuda"  # 'cpu' only for tests of the harness without a GPU (no capture)
    nvtx_domain: str = NVTX_DOMAIN

    # ---- (de)serialisation -------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "CaptureConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> "CaptureConfig":
        return cls.from_dict(json.loads(text))

    # ---- derived -----------------------------------------------------------------------------------------------
    def planted_counts(self) -> Optional[dict]:
        """Planted problems per measured iteration, as metadata.json reports them (None when nothing is planted)."""
        if not self.plant:
            return None
        return {p: 1 for p in self.plant}

    def model_kind(self) -> str:
        """'file' for a model file, 'callable' for module:function, 'builtin' for a name built in code."""
        m = self.model
        if m.endswith((".onnx", ".pt", ".pth", ".ts", ".torchscript", ".jit")) or os.sep in m or m.startswith("."):
            return "file"
        if m.startswith("timm:"):
            return "builtin"
        if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", m):
            return "callable"
        return "builtin"

    def default_name(self) -> str:
        base = os.path.splitext(os.path.basename(self.model.replace(":", "_")))[0]
        if base.startswith("timm_") or self.model.startswith("timm:"):
            base = base.replace("timm_", "")
        if base == "transformer":
            base = f"transformer_d{self.d_model}"
        parts = [base, self.precision, f"b{self.batch}"]
        if self.backend != "torch":
            parts.insert(0, self.backend)
        if self.pinned:
            parts.append("pinned")
        if self.plant:
            parts.append("planted")
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(parts))

    # ---- validation --------------------------------------------------------------------------------------------
    def validate(self) -> "CaptureConfig":
        """Checks that need no GPU; raises CaptureError with one line. Returns self (normalised)."""
        if self.backend not in BACKENDS:
            raise CaptureError(f"unknown backend {self.backend!r}: choose one of {', '.join(BACKENDS)}")
        allowed = TORCH_PRECISIONS if self.backend == "torch" else TRT_PRECISIONS
        if self.precision not in allowed:
            hint = " (int8 needs --backend tensorrt)" if self.precision == "int8" else ""
            raise CaptureError(f"precision {self.precision!r} is not available with --backend {self.backend}: "
                               f"choose one of {', '.join(allowed)}{hint}")
        for attr, low in (("batch", 1), ("iterations", 1), ("warmup", 0), ("seq_len", 1), ("d_model", 1),
                          ("num_layers", 1), ("image_size", 8), ("calib_batches", 1), ("overhead_iterations", 0)):
            if int(getattr(self, attr)) < low:
                raise CaptureError(f"--{attr.replace('_', '-')} must be at least {low}")
        if self.layer_ranges not in LAYER_RANGES:
            raise CaptureError(f"--layer-ranges must be one of {', '.join(LAYER_RANGES)}")
        if isinstance(self.plant, str):
            self.plant = [p for p in self.plant.split(",") if p]
        bad = [p for p in self.plant if p not in PLANTS]
        if bad:
            raise CaptureError(f"unknown --plant {','.join(bad)}: choose from {', '.join(PLANTS)}")
        self.plant = [p for p in PLANTS if p in self.plant]  # fixed order, no duplicates
        if self.pinned and "pageable_upload" in self.plant:
            raise CaptureError("--pinned and --plant pageable_upload contradict each other")
        if self.task not in TASKS:
            raise CaptureError(f"--task must be one of {', '.join(TASKS)}")
        if self.preprocess_device not in ("cpu", "cuda"):
            raise CaptureError("--preprocess-device must be cpu or cuda")
        if self.preprocess_device == "cuda" and self.plant:
            raise CaptureError("--plant works with the CPU pre-processing path only (drop --preprocess-device cuda)")
        if self.gpu_metrics not in GPU_METRICS:
            raise CaptureError(f"--gpu-metrics must be one of {', '.join(GPU_METRICS)}")
        if self.calibrator not in ("entropy", "minmax"):
            raise CaptureError("--calibrator must be entropy or minmax")
        if self.compile and self.cuda_graphs:
            raise CaptureError("--compile and --cuda-graphs are exclusive here (use torch.compile mode "
                               "'reduce-overhead' for graphs under compile)")
        if self.d_model and self.nhead and self.d_model % self.nhead:
            raise CaptureError(f"--d-model {self.d_model} is not divisible by --nhead {self.nhead}")
        if self.input_shape is not None:
            if isinstance(self.input_shape, str):
                try:
                    self.input_shape = [int(x) for x in self.input_shape.replace("x", ",").split(",")]
                except ValueError:
                    raise CaptureError(f"--input-shape {self.input_shape!r}: give per-sample dims like 3,224,224")
            if not self.input_shape or any(int(d) < 1 for d in self.input_shape):
                raise CaptureError("--input-shape needs positive per-sample dims like 3,224,224")
        if self.backend == "tensorrt":
            if not self.model.endswith(".onnx"):
                raise CaptureError("--backend tensorrt needs an ONNX file as --model (e.g. --model model.onnx)")
            if self.compile or self.cuda_graphs:
                raise CaptureError("--compile/--cuda-graphs apply to --backend torch only")
        if self.model_kind() == "file":
            check_model_file(self.model)
        return self

    def effective_layer_ranges(self) -> tuple[str, Optional[str]]:
        """(mode, reason) after options that make per-module ranges meaningless are applied."""
        if self.backend == "tensorrt":
            return "tensorrt", "TensorRT emits its own per-layer NVTX ranges (ProfilingVerbosity.DETAILED)"
        if self.layer_ranges == "leaf" and self.compile:
            return "none", "torch.compile fuses modules: per-module ranges would not match the kernels"
        if self.layer_ranges == "leaf" and self.cuda_graphs:
            return "none", "CUDA graph replay runs no Python hooks: per-module ranges cannot be emitted"
        if self.layer_ranges == "emit_nvtx" and self.cuda_graphs:
            return "none", "CUDA graph replay runs no operators on the host: emit_nvtx has nothing to mark"
        return self.layer_ranges, None


def check_model_file(path: str) -> None:
    """A missing file, an empty one, or an '.onnx' that is not ONNX: one clear CaptureError."""
    if not os.path.exists(path):
        raise CaptureError(f"model file not found: {path}")
    if not os.path.isfile(path):
        raise CaptureError(f"model path is not a file: {path}")
    if os.path.getsize(path) == 0:
        raise CaptureError(f"model file is empty: {path}")
    if path.endswith(".onnx"):
        check_onnx_file(path)


def check_onnx_file(path: str) -> None:
    try:
        import onnx
    except ImportError:  # the workload process will fail later with its own message
        return
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise CaptureError(f"{path} is not an ONNX model ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    if not model.graph.node:
        raise CaptureError(f"{path} is not an ONNX model with a graph (no nodes)")
