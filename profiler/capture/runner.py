"""`python -m profiler run`: measure a workload unprofiled, capture it under nsys, write the run directory.

The run directory is assembled in a temporary sibling folder and renamed into place at the end, so a failed or
interrupted capture leaves nothing half-written behind:

    RUN_DIR/trace.sqlite       nsys's SQLite export (trace.nsys-rep beside it unless --no-keep-rep)
    RUN_DIR/metadata.json      command, versions, GPU, options, unprofiled and profiled latency
    RUN_DIR/summary.json       profiler.analysis.summary.summarize(open_trace(trace.sqlite))
    RUN_DIR/modules.json       torch backend: executed leaf modules in order, with shapes and layer attributes
    RUN_DIR/layer_info.json    tensorrt backend: IEngineInspector JSON
    RUN_DIR/command.txt        the exact `python -m profiler run ...` line
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from profiler.capture.config import CaptureConfig
from profiler.capture.nsys_cmd import looks_like_metrics_failure, probe_metrics_flag, profile_command, export_command
from profiler.errors import CaptureError
from profiler.trace.nsys_binary import find_nsys, nsys_install_hint, nsys_version

DEFAULT_TIMEOUT_S = 1800


class WorkloadFailed(CaptureError):
    """A CaptureError that carries the tail of the workload's stderr for display."""

    def __init__(self, message: str, tail: str = ""):
        super().__init__(message)
        self.tail = tail


def repo_root() -> str:
    import profiler

    return str(Path(profiler.__file__).resolve().parent.parent)


def worker_env() -> dict:
    env = dict(os.environ)
    root = repo_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def command_line(argv: Sequence[str]) -> str:
    """The exact command as the user would retype it: `python -m profiler run ...`."""
    return "python -m profiler " + shlex.join(list(argv))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    rows = [r for r in text.splitlines() if r.strip()]
    return "\n".join(rows[-lines:])


def _last_line(tail: str) -> str:
    rows = [r.strip() for r in tail.splitlines() if r.strip()]
    return rows[-1][:300] if rows else "no output"


def run_worker(cmd: list[str], result_path: Path, log_path: Path, what: str, timeout: float) -> dict:
    """Run a workload process; return its result dict or raise CaptureError/WorkloadFailed with one line."""
    with open(log_path, "ab") as log:
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=worker_env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WorkloadFailed(f"{what} ran past {int(timeout)} s and was stopped (use --timeout)",
                                 _tail(log_path))
        except OSError as exc:
            raise CaptureError(f"cannot start {cmd[0]}: {exc}")
    result = None
    if result_path.exists():
        try:
            result = json.loads(result_path.read_text())
        except ValueError:
            result = None
    if result and "error" in result:
        raise CaptureError(result["error"])
    if proc.returncode != 0 or result is None or "crash" in (result or {}):
        tail = _tail(log_path)
        reason = (result or {}).get("crash") or _last_line(tail)
        raise WorkloadFailed(f"{what} failed (exit {proc.returncode}): {reason}", tail)
    return result


def _nvidia_smi() -> dict:
    smi = shutil.which("nvidia-smi")
    if not smi:
        return {}
    try:
        out = subprocess.run([smi, "--query-gpu=name,driver_version,clocks.max.sm,clocks.max.memory,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {}
    row = (out.stdout or "").strip().splitlines()
    if out.returncode != 0 or not row:
        return {}
    parts = [p.strip() for p in row[0].split(",")]
    keys = ("name", "driver", "max_sm_clock_mhz", "max_mem_clock_mhz", "memory_mib")
    return dict(zip(keys, parts))


def trace_check(sqlite_path: Path, domain: str) -> dict:
    """Counts from the export that show the capture worked: our NVTX ranges, kernels, copies."""
    out: dict = {}
    try:
        con = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    try:
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        out["tables"] = len(tables)
        for t, key in (("CUPTI_ACTIVITY_KIND_KERNEL", "kernels"), ("CUPTI_ACTIVITY_KIND_MEMCPY", "memcpy"),
                       ("NVTX_EVENTS", "nvtx_events"), ("GPU_METRICS", "gpu_metric_samples")):
            out[key] = con.execute(f"select count(*) from {t}").fetchone()[0] if t in tables else 0
        if "NVTX_EVENTS" in tables:
            cols = {r[1] for r in con.execute("pragma table_info(NVTX_EVENTS)")}
            text = "coalesce(e.text, s.value)" if "textId" in cols and "StringIds" in tables else "e.text"
            join = "left join StringIds s on s.id = e.textId" if "textId" in cols and "StringIds" in tables else ""
            q = (f"select count(*) from NVTX_EVENTS e {join} where e.eventType = 59 and "
                 f"{text} like 'iteration\\_%' escape '\\'")
            out["iteration_ranges"] = con.execute(q).fetchone()[0]
            q = (f"select {text} from NVTX_EVENTS e {join} where e.eventType = 75")
            out["nvtx_domains"] = sorted({r[0] for r in con.execute(q) if r[0]})
            out["domain_found"] = domain in out["nvtx_domains"]
    except sqlite3.Error as exc:
        out["error"] = str(exc)
    finally:
        con.close()
    return out


def summarize_run(sqlite_path: Path) -> dict:
    try:
        from profiler.analysis.summary import summarize
        from profiler.trace import open_trace
    except ImportError as exc:
        return {"unavailable": f"profiler.analysis.summary is not available here ({exc})"}
    trace = open_trace(str(sqlite_path))
    try:
        return summarize(trace)
    finally:
        close = getattr(trace, "close", None)
        if callable(close):
            close()


class Progress:
    """rich spinner with elapsed time per step (plain lines when not on a terminal)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        try:
            from rich.console import Console

            self.console = Console(stderr=True)
        except ImportError:  # pragma: no cover
            self.console = None

    def step(self, text: str):
        import contextlib

        if self.quiet:
            return contextlib.nullcontext()
        if self.console is not None and self.console.is_terminal:
            from rich.progress import Progress as RP, SpinnerColumn, TextColumn, TimeElapsedColumn

            @contextlib.contextmanager
            def cm():
                with RP(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                        console=self.console, transient=False) as p:
                    t = p.add_task(text, total=None)
                    yield
                    p.update(t, description=f"{text} [green]done")

            return cm()

        @contextlib.contextmanager
        def plain():
            t0 = time.perf_counter()
            print(f"... {text}", file=sys.stderr, flush=True)
            yield
            print(f"    done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

        return plain()

    def print(self, text: str) -> None:
        if self.quiet:
            return
        if self.console is not None:
            self.console.print(text, highlight=False, markup=False)
        else:  # pragma: no cover
            print(text, file=sys.stderr)


def run_capture(cfg: CaptureConfig, argv: Sequence[str], *, force: bool = False, timeout: float = DEFAULT_TIMEOUT_S,
                quiet: bool = False, nsys: Optional[str] = None) -> Path:
    """Do the whole capture; return the run directory. Raises CaptureError (one line) on any failure, leaving no
    partial run directory."""
    cfg.validate()
    if cfg.device != "cuda" and not os.environ.get("TRTSCOPE_ALLOW_CPU_CAPTURE"):
        raise CaptureError("captures need a CUDA GPU (device 'cpu' is for harness tests only)")
    name = cfg.name or cfg.default_name()
    out = Path(cfg.out or os.path.join("runs", name)).resolve()
    cfg.name = cfg.name or out.name
    if out.exists() and not force:
        raise CaptureError(f"{out} already exists (use --force to replace it, or another --out)")
    nsys = nsys or find_nsys()
    if not nsys:
        raise CaptureError(nsys_install_hint())
    progress = Progress(quiet)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        meta = _capture_into(tmp, cfg, argv, nsys, timeout, progress)
        # the recorded nsys command names the final paths, not the temporary folder
        meta["nsys"]["command"] = [a.replace(str(tmp), str(out)) for a in meta["nsys"]["command"]]
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))
        _commit(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lat = meta.get("latency_ms", {}).get("iteration", {})
    plat = meta.get("profiled_latency_ms", {}).get("iteration", {})
    size = (out / "trace.sqlite").stat().st_size / 1e6 if (out / "trace.sqlite").exists() else 0
    progress.print(f"Run written to {out}  (trace.sqlite {size:.1f} MB, {cfg.iterations} measured iterations)")
    if lat.get("median") is not None:
        progress.print(f"  iteration median {lat['median']:.3f} ms unprofiled, "
                       f"{plat.get('median', float('nan')):.3f} ms under nsys")
    progress.print(dashboard_hint(out))
    progress.print(f"Or summarize it here:     python -m profiler summarize {out / 'trace.sqlite'}")
    return out


def dashboard_hint(out: Path) -> str:
    """How to see the run in the dashboard, which lists runs/ (or $TRTSCOPE_RUNS) beside the bundled samples."""
    runs = Path(os.environ.get("TRTSCOPE_RUNS") or Path(repo_root()) / "runs").resolve()
    app = Path(repo_root()) / "app" / "Home.py"
    if out.parent == runs:
        return f"Open it in the dashboard (run picker): python -m streamlit run {app}"
    return f"Open it in the dashboard: TRTSCOPE_RUNS={out.parent} python -m streamlit run {app}"


def _commit(tmp: Path, out: Path, force: bool) -> None:
    old = None
    if out.exists():
        if not force:
            raise CaptureError(f"{out} appeared while capturing; the new run was discarded")
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _capture_into(tmp: Path, cfg: CaptureConfig, argv: Sequence[str], nsys: str, timeout: float,
                  progress: Progress) -> dict:
    created = _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")
    work = tmp / ".work"
    work.mkdir()
    cfg_path = work / "config.json"
    cfg_path.write_text(cfg.to_json())
    log = work / "workload.log"
    harness = [sys.executable, "-m", "profiler.capture.harness"]

    with progress.step(f"Unprofiled latency: {cfg.warmup} warm-up + {cfg.iterations} measured iterations"
                       + (f" (+ overhead check, {cfg.overhead_iterations} each)" if cfg.overhead_iterations else "")):
        unprof = run_worker(harness + [str(cfg_path), str(work / "unprofiled.json"), "--artifacts", str(tmp)],
                            work / "unprofiled.json", log, "the workload", timeout)

    version = nsys_version(nsys)
    metrics_flag = probe_metrics_flag(nsys) if cfg.gpu_metrics != "off" else None
    use_metrics = cfg.gpu_metrics != "off" and metrics_flag is not None
    metrics_note = None
    if cfg.gpu_metrics == "on" and metrics_flag is None:
        raise CaptureError(f"this nsys ({version}) has no GPU-metrics option; drop --gpu-metrics on")
    prefix = tmp / "trace"
    workload = harness + [str(cfg_path), str(work / "profiled.json"), "--profiled"]
    with progress.step("Profiling under nsys" + (" (GPU metrics at %d Hz)" % cfg.gpu_metrics_frequency
                                                  if use_metrics else "")):
        cmd = profile_command(nsys, str(prefix), workload, gpu_metrics=use_metrics,
                              gpu_metrics_frequency=cfg.gpu_metrics_frequency,
                              metrics_flag=metrics_flag or "--gpu-metrics-devices")
        try:
            prof = run_worker(cmd, work / "profiled.json", work / "nsys.log", "the workload under nsys", timeout)
        except WorkloadFailed as exc:
            if use_metrics and cfg.gpu_metrics == "auto" and looks_like_metrics_failure(exc.tail):
                metrics_note = "GPU metrics were not collected: nsys could not sample them on this GPU/driver"
                use_metrics = False
                cmd = profile_command(nsys, str(prefix), workload, gpu_metrics=False)
                (work / "profiled.json").unlink(missing_ok=True)
                prof = run_worker(cmd, work / "profiled.json", work / "nsys.log", "the workload under nsys", timeout)
            else:
                raise
    rep = prefix.with_suffix(".nsys-rep")
    sqlite_path = tmp / "trace.sqlite"
    with progress.step("Exporting SQLite"):
        if not sqlite_path.exists():
            if not rep.exists():
                raise WorkloadFailed("nsys wrote no report (did the capture range start? see the nsys output)",
                                     _tail(work / "nsys.log"))
            ex = subprocess.run(export_command(nsys, str(rep), str(sqlite_path)), capture_output=True, text=True)
            if ex.returncode != 0 or not sqlite_path.exists():
                raise WorkloadFailed(f"nsys export failed (exit {ex.returncode})", (ex.stdout or "") + (ex.stderr or ""))
        check = trace_check(sqlite_path, cfg.nvtx_domain)
        if not check.get("iteration_ranges"):
            raise WorkloadFailed("the trace holds no iteration_<i> NVTX ranges: the capture did not record the "
                                 "measured iterations", _tail(work / "nsys.log"))
    if not cfg.keep_rep:
        rep.unlink(missing_ok=True)
    if use_metrics and not check.get("gpu_metric_samples"):
        metrics_note = "GPU metrics were requested but the export holds no GPU_METRICS samples (see nsys.log)"
        progress.print(f"warning: {metrics_note}")

    meta = build_metadata(cfg, argv, created, unprof, prof, nsys, version, cmd, use_metrics, metrics_note, check)
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))
    (tmp / "command.txt").write_text(meta["command"] + "\n")
    with progress.step("Summarizing the trace"):
        try:
            summary = summarize_run(sqlite_path)
        except Exception as exc:  # noqa: BLE001 - keep the capture; say why the summary is missing
            summary = {"error": f"summarize failed: {type(exc).__name__}: {str(exc)[:200]}"}
            progress.print(f"warning: {summary['error']}")
    (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    for f in ("workload.log", "nsys.log"):
        if (work / f).exists() and (work / f).stat().st_size:
            shutil.copy(work / f, tmp / f)
    shutil.rmtree(work)
    return meta


def build_metadata(cfg: CaptureConfig, argv, created, unprof: dict, prof: dict, nsys: str, version, cmd,
                   use_metrics: bool, metrics_note, check: dict) -> dict:
    versions = dict(unprof.get("versions") or {})
    smi = _nvidia_smi()
    versions["nsys"] = version
    versions["driver"] = smi.get("driver")
    gpu = dict(unprof.get("gpu") or {})
    for k in ("max_sm_clock_mhz", "max_mem_clock_mhz", "memory_mib"):
        if smi.get(k):
            gpu[k] = smi[k]
    mi = unprof.get("model_info") or {}
    if "tensorrt" in mi:
        versions["tensorrt"] = mi["tensorrt"]
    return {
        "name": cfg.name,
        "created": created,
        "backend": cfg.backend,
        "model": cfg.model,
        "precision": cfg.precision,
        "batch": cfg.batch,
        "iterations": cfg.iterations,
        "warmup": cfg.warmup,
        "pinned": cfg.pinned,
        "layer_ranges": unprof.get("layer_ranges"),
        "layer_ranges_requested": cfg.layer_ranges,
        "layer_ranges_note": unprof.get("layer_ranges_reason"),
        "planted": cfg.planted_counts(),
        "copies_per_iteration": unprof.get("copies_per_iteration"),
        "command": command_line(argv),
        "argv": ["python", "-m", "profiler"] + list(argv),
        "versions": versions,
        "gpu": gpu,
        "latency_ms": unprof.get("latency_ms"),
        "profiled_latency_ms": prof.get("latency_ms"),
        "latency_timing": unprof.get("timing"),
        "wall_ms": unprof.get("wall_ms"),
        "profiled_wall_ms": prof.get("wall_ms"),
        "nvtx_domain": cfg.nvtx_domain,
        "nvtx_recorded": prof.get("nvtx_recording"),
        "task": unprof.get("task"),
        "input": unprof.get("input"),
        "model_info": mi,
        "parameters": unprof.get("parameters"),
        "leaf_modules": unprof.get("leaf_modules"),
        "options": {
            "channels_last": cfg.channels_last, "compile": cfg.compile, "cuda_graphs": cfg.cuda_graphs,
            "preprocess_device": cfg.preprocess_device, "sync_after_inference": cfg.sync_after_inference,
            "seed": cfg.seed, "image_size": cfg.image_size,
            **({"d_model": cfg.d_model, "nhead": mi.get("nhead"), "num_layers": cfg.num_layers,
                "seq_len": cfg.seq_len} if cfg.model == "transformer" else {}),
            **({"calibrator": cfg.calibrator, "calib_batches": cfg.calib_batches, "sparsity": cfg.sparsity,
                "trtexec": cfg.trtexec} if cfg.backend == "tensorrt" else {}),
        },
        "nsys": {"path": nsys, "version": version, "command": cmd, "gpu_metrics": use_metrics,
                 "gpu_metrics_frequency": cfg.gpu_metrics_frequency if use_metrics else None,
                 "gpu_metrics_note": metrics_note, "capture_range": "cudaProfilerApi (measured iterations only)"},
        "overhead": unprof.get("overhead"),
        "seconds": {"unprofiled": unprof.get("seconds"), "profiled": prof.get("seconds")},
        "trace_check": check,
    }
