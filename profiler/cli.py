"""Command line: `python -m profiler summarize TRACE [--json]` and `python -m profiler run ...`."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

import pandas as pd

from profiler.errors import CaptureError, ModelError, TraceError


def _short(name: str, width: int = 70) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def print_summary(a) -> None:
    """Human-readable tables of an Analysis."""
    t = a.trace
    pd.set_option("display.width", 200)
    print(f"Trace   {t.source}")
    print(f"Device  {t.device.get('name')}   nsys {t.metadata.get('EXPORT_PRODUCT_VERSION', '?')}")
    for w in t.warnings:
        print(f"note    {w}")
    print("\nStages (share of iteration wall time)")
    if a.stages.empty:
        print("  no preprocess/inference/postprocess ranges")
    else:
        s = a.stages.assign(total_ms=a.stages["total_ns"] / 1e6, gpu_ms=a.stages["gpu_ns"] / 1e6,
                            share=(100 * a.stages["share"]).round(1))
        print(s[["name", "instances", "total_ms", "gpu_ms", "share"]].to_string(index=False))
    print(f"\nTop kernels (Tensor-Core kernels: {a.tensor_core_share:.0%} of kernel time)")
    k = a.kernel_summary.head(15)
    print(pd.DataFrame({"total_ms": k["total_ns"] / 1e6, "n": k["instances"], "med_us": k["med_ns"] / 1e3,
                        "TC": k["tensor_core"].map({True: "yes", False: ""}),
                        "name": k["name"].map(_short)}).to_string(index=False))
    print("\nMemory operations")
    m = a.memory_summary
    print(m[["operation", "count", "total_ns", "total_bytes"]].to_string(index=False) if len(m) else "  none")
    from profiler.analysis.copies import copy_findings
    found = copy_findings(a)
    print(f"\nCopy findings ({len(found)}; top 10 by wasted time)")
    for f in found[:10]:
        print(f"  {f['wasted_ns'] / 1e6:8.3f} ms  {f['rule']:<16} {_short(f['evidence'], 110)}")
    print(f"\nLayers ({len(a.layers)}; top 15 by GPU time)")
    if len(a.layers):
        top = a.layers.sort_values("gpu_ns", ascending=False).head(15)
        print(pd.DataFrame({"gpu_ms": top["gpu_ns"] / 1e6, "share": (100 * top["share"]).round(1),
                            "TC%": (100 * top["tensor_core_share"]).round(0), "kernels": top["kernels"],
                            "name": top["name"].map(lambda n: _short(n, 60))}).to_string(index=False))


def cmd_summarize(args) -> int:
    from profiler.analysis.summary import analyze, to_json
    from profiler.trace import open_trace

    with open_trace(args.trace) as trace:
        a = analyze(trace, layer_depth=args.layer_depth, layer_domain=args.layer_domain,
                    stage_names=tuple(args.stages.split(",")))
        if args.json:
            json.dump(to_json(a), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print_summary(a)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m profiler", description="trtscope: GPU inference profiling")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summarize", help="tables of an nsys export (.sqlite, .sqlite.xz/.zst/.gz, .nsys-rep)")
    s.add_argument("trace")
    s.add_argument("--json", action="store_true", help="one JSON object on stdout (stable keys)")
    s.add_argument("--stages", default="preprocess,inference,postprocess", help="stage range names, comma-separated")
    s.add_argument("--layer-depth", type=int, default=0, help="levels below the inference stage's children")
    s.add_argument("--layer-domain", default=None, help="only layer ranges of this NVTX domain")
    s.set_defaults(func=cmd_summarize)
    try:
        from profiler.capture.cli import add_run_parser
    except ImportError:
        pass
    else:
        add_run_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TraceError, CaptureError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        print(f"error: {getattr(args, 'trace', '')}: damaged SQLite file ({exc})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
