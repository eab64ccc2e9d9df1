"""Harness overhead: iteration latency with NVTX instrumentation on vs off, in one process.

    python -m profiler.capture.overhead --model resnet50 --precision fp16 --batch 8 --iterations 30 [--under-nsys]

Runs the workload once (warm-up, then `--iterations` measured iterations for each state, alternating blocks of
5 iterations: instrumented = stage ranges + per-layer ranges; bare = no NVTX call and no per-layer wrapper) and
prints a JSON line with the medians and the overhead in percent. `--under-nsys` runs the same process under
`nsys profile --trace=cuda,nvtx` (no capture range), so NVTX calls go to a recording tool as in a capture.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from profiler.capture.cli import add_run_arguments, config_from_args
from profiler.capture.runner import run_worker
from profiler.errors import CaptureError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m profiler.capture.overhead")
    add_run_arguments(ap)
    ap.add_argument("--under-nsys", action="store_true")
    args = ap.parse_args(argv)
    cfg = config_from_args(args)
    cfg.overhead_iterations = cfg.iterations
    cfg.validate()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "config.json").write_text(cfg.to_json())
        cmd = [sys.executable, "-m", "profiler.capture.harness", str(d / "config.json"), str(d / "result.json")]
        if args.under_nsys:
            from profiler.trace.nsys_binary import find_nsys, nsys_install_hint

            nsys = find_nsys()
            if not nsys:
                raise SystemExit(f"error: {nsys_install_hint()}")
            cmd = [nsys, "profile", "--trace=cuda,nvtx", "--sample=none", "--cpuctxsw=none", "--export=none",
                   f"--output={d / 'overhead'}", "--force-overwrite=true"] + cmd
        try:
            res = run_worker(cmd, d / "result.json", d / "log.txt", "the workload", args.timeout)
        except CaptureError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    ov = res["overhead"]
    out = {"model": cfg.model, "precision": cfg.precision, "batch": cfg.batch, "under_nsys": args.under_nsys,
           "nvtx_recording": ov["nvtx_recording"], "layer_ranges": ov["layer_ranges"],
           "iterations_each": ov["iterations_each"],
           "iteration_median_ms": {"on": ov["on_ms"]["iteration"]["median"], "off": ov["off_ms"]["iteration"]["median"]},
           "inference_median_ms": {"on": ov["on_ms"]["inference"]["median"], "off": ov["off_ms"]["inference"]["median"]},
           "overhead_pct": ov["overhead_pct"], "leaf_modules": res.get("leaf_modules")}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
