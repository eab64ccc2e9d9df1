"""TensorRT backend: ONNX -> engine with the `tensorrt` Python API (10.x / 11.x), run with execute_async_v3 on
PyTorch's current stream and PyTorch-owned device buffers.

- precision via builder flags (TensorRT 10) or a strongly typed ONNX (TensorRT 11): see trt_config.builder_plan;
- INT8 by calibration (IInt8EntropyCalibrator2 or IInt8MinMaxCalibrator, fed with batches from the real
  pre-processing) or by explicit Q/DQ nodes; 2:4 structured sparsity with --sparsity;
- ProfilingVerbosity.DETAILED, so TensorRT emits one NVTX range per layer and IEngineInspector reports each
  layer's precision, tactic and kernel (saved as layer_info.json);
- engines cached in ~/.cache/trtscope/engines (or --engine-cache) keyed by model hash + flags + shapes +
  TensorRT version + GPU;
- with --trtexec and trtexec on PATH, trtexec is also run (--profilingVerbosity=detailed --exportLayerInfo
  --exportProfile) and its outputs are saved beside (layer_info.trtexec.json, profile.trtexec.json).

`tensorrt` is imported only when this backend is used. NOT RUN ON A GPU in this project so far (no TensorRT
builder can be installed in the development workplace); the pure parts (trt_config, layer_info) are tested.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from profiler.backends.base import LoadedModel
from profiler.backends.layer_info import parse_layer_info, parse_trtexec_profile
from profiler.backends.trt_config import (builder_plan, concrete_shape, engine_cache_key, onnx_has_qdq,
                                          trtexec_command)
from profiler.errors import CaptureError


def import_tensorrt():
    try:
        import tensorrt as trt  # noqa: F401
    except ImportError:
        raise CaptureError("--backend tensorrt needs the TensorRT Python package (pip install tensorrt, with a "
                           "matching CUDA), or use --backend torch for the same ONNX file (onnx2torch)")
    except Exception as exc:  # noqa: BLE001 - e.g. the PyPI stub that cannot fetch its libraries
        raise CaptureError(f"the tensorrt package is installed but cannot load ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:120] if str(exc) else ''})")
    return trt


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "trtscope", "engines")


_TRT_TO_TORCH = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "INT32": "int32",
                 "INT64": "int64", "BOOL": "bool", "UINT8": "uint8"}


class TensorRTModel(LoadedModel):
    backend = "tensorrt"

    def __init__(self, cfg, device: str):
        import onnx
        import torch

        from profiler.capture.pipeline import InputSpec, is_image_shape

        self.cfg = cfg
        self.torch = torch
        self.trt = import_tensorrt()
        self.device = torch.device(device)
        self.layer_ranges = "tensorrt"
        self.layer_ranges_reason = "TensorRT emits one NVTX range per layer (ProfilingVerbosity.DETAILED)"
        self.onnx_path = cfg.model
        data = Path(cfg.model).read_bytes()
        self.model_sha = hashlib.sha256(data).hexdigest()
        proto = onnx.load_from_string(data) if hasattr(onnx, "load_from_string") else onnx.load(cfg.model)
        inits = {i.name for i in proto.graph.initializer}
        graph_inputs = [i for i in proto.graph.input if i.name not in inits]
        if len(graph_inputs) != 1:
            raise CaptureError(f"the tensorrt backend drives models with one input; this one has {len(graph_inputs)}")
        gi = graph_inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in gi.type.tensor_type.shape.dim]
        if cfg.input_shape:
            dims = [None] + list(cfg.input_shape)
        self.input_name = gi.name
        self.input_shape = concrete_shape(dims, cfg.batch)
        self.has_qdq = onnx_has_qdq(n.op_type for n in proto.graph.node)
        per_sample = tuple(self.input_shape[1:])
        kind = "image" if is_image_shape(per_sample) and per_sample[0] == 3 else "tensor"
        self.input_spec = InputSpec(kind, per_sample, "float32")
        self.task = cfg.task if cfg.task != "auto" else "classification"
        self.model_dtype = torch.float32
        flags = [n for n in dir(self.trt.BuilderFlag) if n.isupper()]
        self.plan = builder_plan(cfg.precision, cfg.sparsity, self.trt.__version__, flags, self.has_qdq,
                                 cfg.calibrator)
        self.info = {"tensorrt": self.trt.__version__, "plan": self.plan, "onnx_sha256": self.model_sha,
                     "input": {self.input_name: self.input_shape}, "explicit_quantization": self.has_qdq}
        self.engine = None
        self.context = None
        self.calibration_source = None  # set by the harness: k -> a pre-processed device batch
        self._layer_info_json: Optional[str] = None
        self._trtexec_files: dict = {}

    # ---- build ---------------------------------------------------------------------------------------------------
    def _build(self, cache_dir: str) -> bytes:
        trt = self.trt
        torch = self.torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
        key = engine_cache_key(self.model_sha, self.plan, {self.input_name: self.input_shape}, trt.__version__, gpu,
                               self.cfg.workspace_mb,
                               calib_id=f"{self.cfg.calibrator}:{self.cfg.calib_batches}:{self.cfg.seed}"
                               if self.plan["calibrator"] else None)
        os.makedirs(cache_dir, exist_ok=True)
        path = os.path.join(cache_dir, f"{key}.engine")
        self.info["engine_cache"] = path
        if os.path.exists(path):
            self.info["engine_from_cache"] = True
            return Path(path).read_bytes()
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags = 0  # explicit batch is implicit in 10.x; 11.x networks are always strongly typed
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(os.path.abspath(self.onnx_path)):
            errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise CaptureError(f"TensorRT's ONNX parser rejected {self.onnx_path}: {errs[:300]}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.cfg.workspace_mb) << 20)
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        for f in self.plan["set"]:
            config.set_flag(getattr(trt.BuilderFlag, f))
        for f in self.plan["clear"]:
            config.clear_flag(getattr(trt.BuilderFlag, f))
        inp = network.get_input(0)
        if any(d < 0 for d in inp.shape):
            profile = builder.create_optimization_profile()
            shp = tuple(self.input_shape)
            profile.set_shape(inp.name, shp, shp, shp)
            config.add_optimization_profile(profile)
        calib = None
        if self.plan["calibrator"]:
            if self.calibration_source is None:
                raise CaptureError("INT8 calibration needs calibration batches (internal: no source)")
            batches = [self.calibration_source(k) for k in range(self.cfg.calib_batches)]
            calib = make_calibrator(trt, self.plan["calibrator"], batches,
                                    os.path.join(cache_dir, f"{key}.calib"))
            config.int8_calibrator = calib
            if hasattr(config, "set_calibration_profile") and any(d < 0 for d in inp.shape):
                config.set_calibration_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise CaptureError("TensorRT could not build an engine (see the workload output)")
        data = bytes(serialized)
        Path(path).write_bytes(data)
        self.info["engine_from_cache"] = False
        return data

    def prepare(self, example, artifacts_dir: Optional[str] = None) -> None:
        trt = self.trt
        torch = self.torch
        cache = self.cfg.engine_cache or default_cache_dir()
        data = self._build(cache)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise CaptureError("TensorRT could not deserialize the engine (cache from another version? delete "
                               f"{self.info.get('engine_cache')})")
        self.context = self.engine.create_execution_context()
        self.outputs = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            mode = self.engine.get_tensor_mode(name)
            if mode == trt.TensorIOMode.INPUT:
                if any(d < 0 for d in self.engine.get_tensor_shape(name)):
                    self.context.set_input_shape(name, tuple(self.input_shape))
                dt = _TRT_TO_TORCH.get(self.engine.get_tensor_dtype(name).name, "float32")
                self.model_dtype = getattr(torch, dt)
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                shape = tuple(self.context.get_tensor_shape(name))
                dt = getattr(torch, _TRT_TO_TORCH.get(self.engine.get_tensor_dtype(name).name, "float32"))
                buf = torch.empty(shape, dtype=dt, device=self.device)
                self.outputs[name] = buf
                self.context.set_tensor_address(name, buf.data_ptr())
        inspector = self.engine.create_engine_inspector()
        try:
            inspector.execution_context = self.context
        except AttributeError:  # older spelling
            inspector.context = self.context
        self._layer_info_json = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        try:
            parsed = parse_layer_info(self._layer_info_json)
            self.info["layers"] = len(parsed["layers"])
            self.info["layer_info_verbosity"] = parsed["verbosity"]
        except ValueError:
            pass
        if self.cfg.trtexec:
            self._run_trtexec(artifacts_dir)

    def _run_trtexec(self, artifacts_dir: Optional[str]) -> None:
        exe = shutil.which("trtexec")
        if not exe or not artifacts_dir:
            self.info["trtexec"] = "not on PATH" if not exe else "skipped"
            return
        li = os.path.join(artifacts_dir, "layer_info.trtexec.json")
        pr = os.path.join(artifacts_dir, "profile.trtexec.json")
        cmd = trtexec_command(exe, os.path.abspath(self.onnx_path), self.cfg.precision, self.trt.__version__,
                              sparsity=self.cfg.sparsity, shapes={self.input_name: self.input_shape},
                              layer_info=li, profile=pr)
        out = subprocess.run(cmd, capture_output=True, text=True)
        self.info["trtexec"] = {"command": cmd, "exit": out.returncode}
        if out.returncode == 0 and os.path.exists(pr):
            try:
                self.info["trtexec"]["profile_layers"] = len(parse_trtexec_profile(Path(pr).read_text())["layers"])
            except ValueError:
                pass

    def run(self, x):
        torch = self.torch
        if not x.is_contiguous():
            x = x.contiguous()
        if x.dtype != self.model_dtype:
            x = x.to(self.model_dtype)
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self._keep = x  # alive until the next call
        ok = self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        if not ok:
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return next(iter(self.outputs.values()))

    def artifacts(self) -> dict:
        out = {}
        if self._layer_info_json:
            try:
                out["layer_info.json"] = json.loads(self._layer_info_json)
            except ValueError:
                out["layer_info.json"] = self._layer_info_json
        return out


def make_calibrator(trt, kind: str, batches: list, cache_path: str):
    """An INT8 calibrator over device tensors (no pycuda): entropy (IInt8EntropyCalibrator2) or min-max."""
    base = trt.IInt8EntropyCalibrator2 if kind == "entropy" else trt.IInt8MinMaxCalibrator

    class Calibrator(base):
        def __init__(self):
            base.__init__(self)
            self.batches = [b.contiguous().float() for b in batches]
            self.i = 0

        def get_batch_size(self):
            return int(self.batches[0].shape[0])

        def get_batch(self, names):
            if self.i >= len(self.batches):
                return None
            b = self.batches[self.i]
            self.i += 1
            return [int(b.data_ptr())]

        def read_calibration_cache(self):
            return Path(cache_path).read_bytes() if os.path.exists(cache_path) else None

        def write_calibration_cache(self, cache):
            Path(cache_path).write_bytes(bytes(cache))

    return Calibrator()


def load(cfg, device: str) -> TensorRTModel:
    return TensorRTModel(cfg, device)
