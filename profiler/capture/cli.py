"""`python -m profiler run ...`: the capture sub-command (wired into profiler/cli.py by `add_run_parser`)."""

from __future__ import annotations

import argparse
import sys

from profiler.capture.config import LAYER_RANGES, PLANTS, PRECISIONS, CaptureConfig
from profiler.errors import CaptureError

EXAMPLES = """examples:
  python -m profiler run --model resnet50 --precision fp16 --batch 8 --out runs/resnet50_fp16
  python -m profiler run --model transformer --d-model 500 --precision fp16 --batch 8
  python -m profiler run --model mymodels:build --input-shape 3,224,224
  python -m profiler run --backend tensorrt --model model.onnx --precision int8
  python -m profiler run --model resnet50 --plant pageable_upload,round_trip,constant_upload
"""


def add_run_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "run", help="capture an inference workload under Nsight Systems into a run directory",
        description="Run an inference workload (pre-process, inference, post-process) under nsys and write a run "
                    "directory: trace.sqlite, metadata.json, summary.json (+ modules.json / layer_info.json).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.set_defaults(func=run_command)
    return p


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    d = CaptureConfig()
    p.add_argument("--backend", choices=("torch", "tensorrt"), default=d.backend)
    p.add_argument("--model", default=d.model,
                   help="built-in name (resnet50, mobilenet_v2, any torchvision classifier, timm:NAME, transformer, "
                        "tiny_yolo), module:function returning an nn.Module, a TorchScript file, or an .onnx file")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--iterations", type=int, default=d.iterations, help="measured iterations (default %(default)s)")
    p.add_argument("--warmup", type=int, default=d.warmup, help="warm-up iterations, not captured")
    p.add_argument("--pinned", action="store_true", help="stage input/output through pinned host buffers (async)")
    p.add_argument("--out", help="run directory (default runs/<name>)")
    p.add_argument("--name", help="run name (default: the --out folder name)")
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    g = p.add_argument_group("harness")
    g.add_argument("--layer-ranges", choices=LAYER_RANGES, default=d.layer_ranges,
                   help="per-layer NVTX ranges: one per executed leaf module (default), none, or PyTorch's emit_nvtx")
    g.add_argument("--plant", default="", metavar="LIST",
                   help=f"plant problems for the copy analysis, comma-separated: {','.join(PLANTS)}")
    g.add_argument("--task", choices=("auto", "classification", "detection"), default=d.task)
    g.add_argument("--preprocess-device", choices=("cpu", "cuda"), default=d.preprocess_device,
                   help="decode/resize/normalise on the CPU (default) or the GPU (nvJPEG)")
    g.add_argument("--no-sync-after-inference", dest="sync_after_inference", action="store_false",
                   help="do not torch.cuda.synchronize() at the end of the inference stage")
    g.add_argument("--input-shape", help="per-sample input shape for models that do not say, e.g. 3,224,224")
    g.add_argument("--image-size", type=int, default=d.image_size)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--measure-overhead", type=int, default=0, metavar="N", dest="overhead_iterations",
                   help="also measure NVTX on/off overhead (N iterations each, same process, unprofiled)")
    t = p.add_argument_group("torch backend")
    t.add_argument("--channels-last", action="store_true")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--cuda-graphs", action="store_true", help="replay the model as one CUDA graph")
    t.add_argument("--d-model", type=int, default=d.d_model, help="transformer width (default %(default)s)")
    t.add_argument("--nhead", type=int, default=None, help="transformer heads (default: 8 if it divides d-model)")
    t.add_argument("--layers", type=int, default=d.num_layers, dest="num_layers")
    t.add_argument("--seq-len", type=int, default=d.seq_len)
    r = p.add_argument_group("tensorrt backend")
    r.add_argument("--calibrator", choices=("entropy", "minmax"), default=d.calibrator, help="INT8 calibrator")
    r.add_argument("--calib-batches", type=int, default=d.calib_batches)
    r.add_argument("--sparsity", action="store_true", help="allow 2:4 structured-sparse tactics")
    r.add_argument("--engine-cache", help="engine cache folder (default ~/.cache/trtscope/engines)")
    r.add_argument("--trtexec", action="store_true", help="also run trtexec (when on PATH) for its layer profile")
    r.add_argument("--workspace-mb", type=int, default=d.workspace_mb)
    n = p.add_argument_group("nsys")
    n.add_argument("--gpu-metrics", choices=("auto", "on", "off"), default=d.gpu_metrics)
    n.add_argument("--gpu-metrics-frequency", type=int, default=d.gpu_metrics_frequency, metavar="HZ")
    n.add_argument("--no-keep-rep", dest="keep_rep", action="store_false", help="delete trace.nsys-rep after export")
    n.add_argument("--timeout", type=float, default=1800, help="seconds allowed for each workload process")
    n.add_argument("--quiet", action="store_true")
    n.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # 'cpu': harness tests only


def config_from_args(args: argparse.Namespace) -> CaptureConfig:
    known = {f for f in CaptureConfig.__dataclass_fields__}
    values = {k: v for k, v in vars(args).items() if k in known and v is not None}
    values["plant"] = [x.strip() for x in (args.plant or "").split(",") if x.strip()]
    return CaptureConfig.from_dict(values)


def run_command(args: argparse.Namespace, argv=None) -> int:
    """Entry point of `profiler run`; prints `error: <one line>` and returns 2 on any CaptureError."""
    from profiler.capture.runner import WorkloadFailed, run_capture

    if argv is None:
        argv = _argv_from_sys()
    try:
        cfg = config_from_args(args)
        run_capture(cfg, argv, force=args.force, timeout=args.timeout, quiet=args.quiet)
    except WorkloadFailed as exc:
        if exc.tail:
            print("--- last lines of the workload's output ---", file=sys.stderr)
            print(exc.tail, file=sys.stderr)
            print("---", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CaptureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; no run directory was written", file=sys.stderr)
        return 2
    return 0


def _argv_from_sys() -> list[str]:
    """sys.argv after `python -m profiler` (or the console script)."""
    av = list(sys.argv[1:])
    if av and av[0] != "run" and "run" in av:
        av = av[av.index("run"):]
    return av


def main(argv=None) -> int:
    """Stand-alone: `python -m profiler.capture run ...` (same as `python -m profiler run ...`)."""
    ap = argparse.ArgumentParser(prog="python -m profiler")
    sub = ap.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(argv)
    return args.func(args, argv)
