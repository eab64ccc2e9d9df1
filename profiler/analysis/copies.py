"""Memory-copy detective: rules that find the copies (and memsets) that waste time, and say where each comes from.

Every rule is a pure function over `copy_ops` (each copy, memset and copy / layout kernel with its launching API
call and where it sits in the NVTX tree; `unoverlapped` also over `kernel_ops`, every kernel in a thin frame).
A rule returns the rows it flags with a `wasted_ns` estimate; `findings` groups flagged rows by call site into
findings (dicts, JSON-ready). Times are ns on the trace clock, sizes bytes.

Where a copy comes from (no backtraces in a trace, so "call site" is approximated from NVTX and the API call):
- stage: the ancestor range named like a stage (preprocess / inference / postprocess);
- layer: the layer range (`layers.layer_ranges`) it was launched in;
- slot: the copy's ordinal among copies of the same direction launched on its thread within one instance of
  its scope (the stage instance; else the iteration; else the outermost range). "preprocess H2D #1" is the
  second upload of every preprocess. Copies outside every range share slot -1.
- api_name and thread (global_tid) of the launching CUDA call.

Rules (definitions in detail in docs/notes/copies.md):
- pageable_memcpy: copies to/from pageable host memory launched by an async memcpy API (nsys's
  cuda_memcpy_async rule: `cudaMemcpy%Async%` runtime calls, src or dst kind Pageable; also the driver's
  `cuMemcpy*Async`).
- sync_memcpy: copies launched by a synchronous memcpy API (no `Async` in the name), as nsys's cuda_memcpy_sync
  rule selects them: not copies within one device (they do not block the host) and not host-to-device copies of
  at most 64,000 bytes (they return once staged); also the driver's `cuMemcpy*`.
- sync_memset: memsets launched by a synchronous memset API on pinned or managed memory (nsys's
  cuda_memset_sync rule; memsets of device memory do not block the host).
- round_trip: a device-to-host copy whose very next GPU operation launched by the same thread is a
  host-to-device copy of the same size on the same device (from the same host memory kind): nothing ran on the
  device in between, so the host copy came straight back. Every pair counts.
- repeated_upload: a host-to-device call site that copies the same number of bytes in every instance of its
  scope (every iteration), that is not the iteration's input upload (the first upload of the iteration) and
  not the return leg of a round trip. A trace holds no payloads: "unchanged data" cannot be proven, only
  "same call site, same size, every iteration".
- device_to_device: device-to-device and peer copies, and copy / layout-conversion kernels (NCHW<->NHWC,
  reformat, PyTorch's direct copy kernel), inside the inference stage (the whole trace when no stages), per layer.
- tiny_copies: copies of at most 64 KiB whose API call takes longer than the transfer, at least 4 per scope
  instance at one call site group (stage, direction, API, thread).
- unoverlapped: copies (not memsets) with at least 10 µs during which no kernel ran on the device, in an
  iteration (or trace) whose kernel time could have hidden them.
tiny_copies and unoverlapped look only inside measured iterations when the trace marks them (set-up copies such
as weight uploads happen once); the other rules count every occurrence in the trace, as nsys does.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from profiler.analysis.layers import layer_name, layer_ranges
from profiler.analysis.stages import DEFAULT_ITERATION, DEFAULT_STAGES

RULES = ("pageable_memcpy", "sync_memcpy", "sync_memset", "round_trip", "repeated_upload", "device_to_device",
         "tiny_copies", "unoverlapped")

TITLES = {
    "pageable_memcpy": "Async copy from/to pageable host memory",
    "sync_memcpy": "Synchronous memcpy blocks the host",
    "sync_memset": "Synchronous memset blocks the host",
    "round_trip": "Device-to-host copy sent straight back to the device",
    "repeated_upload": "Same-size upload from the same call site every iteration",
    "device_to_device": "Device-to-device copy / layout conversion inside inference",
    "tiny_copies": "Many small copies: launch overhead exceeds transfer time",
    "unoverlapped": "Copy not overlapped with compute",
}

SUGGESTIONS = {
    "pageable_memcpy": "Copy through pinned host memory (pin_memory() or a reused pinned staging buffer, then "
                       ".to(device, non_blocking=True)) so the copy is truly asynchronous.",
    "sync_memcpy": "Use cudaMemcpyAsync on a stream with pinned memory and synchronize only where the host "
                   "needs the data.",
    "sync_memset": "Use cudaMemsetAsync on a stream; the synchronous form blocks the host on pinned or managed "
                   "memory.",
    "round_trip": "Keep the tensor on the GPU: do the host-side step on the device (or drop it) instead of "
                  "copying to the host and straight back.",
    "repeated_upload": "If this data does not change, upload it once before the loop and keep it on the device "
                       "(a cached device tensor / register_buffer).",
    "device_to_device": "Keep one memory layout end to end (e.g. channels_last model and input, or one engine "
                        "format) so the copy or reformat disappears.",
    "tiny_copies": "Pack the small copies into one buffer and copy once, or keep the values on the device.",
    "unoverlapped": "Overlap the copy with compute: pinned memory and a non_blocking copy on a separate stream, "
                    "prefetching the next batch while the current one runs.",
}

WASTE_BASIS = {
    "pageable_memcpy": "host time blocked in the copy call",
    "sync_memcpy": "host time blocked in the copy call",
    "sync_memset": "host time blocked in the memset call",
    "round_trip": "GPU time and call time of both copies",
    "repeated_upload": "GPU time and call time of the copy",
    "device_to_device": "GPU time of the copy or kernel",
    "tiny_copies": "call time beyond the transfer time",
    "unoverlapped": "copy time with no kernel running on the device",
}

H2D, D2H, D2D, P2P = "Host-to-Device", "Device-to-Host", "Device-to-Device", "Peer-to-Peer"
DEVICE_COPY_OPERATIONS = (D2D, P2P, "Array-to-Array", "Array-to-Device", "Device-to-Array",
                          "Unified Device-to-Device")
_ASYNC_MEMCPY_API = re.compile(r"^(cudaMemcpy.*Async|cuMemcpy.*Async)", re.IGNORECASE)  # nsys: LIKE 'cudaMemcpy%Async%'
_MEMCPY_API = re.compile(r"^(cudaMemcpy|cuMemcpy)", re.IGNORECASE)
_MEMSET_API = re.compile(r"^(cudaMemset|cuMemset|cuMemsetD)", re.IGNORECASE)
_LAYOUT_KERNEL = re.compile(r"(nchw|nhwc|nc[a-z]*hw\d*)_?(to|2)_?(nchw|nhwc|nc[a-z]*hw\d*)|reformat", re.IGNORECASE)
_COPY_KERNEL = re.compile(r"direct_copy_kernel", re.IGNORECASE)

TINY_BYTES = 64 * 1024
SYNC_H2D_STAGED_BYTES = 64_000  # nsys cuda_memcpy_sync: smaller sync H2D copies return once staged
TINY_MIN_PER_INSTANCE = 4
UNOVERLAPPED_MIN_NS = 10_000
OCCURRENCES = 5

OP_COLUMNS = ["op", "kind", "name", "operation", "start", "end", "duration_ns", "bytes", "device_id", "stream_id",
              "global_pid", "correlation_id", "global_tid", "api_name", "api_start", "api_end", "api_ns", "src_kind",
              "dst_kind", "mem_kind", "stage", "stage_pos", "iteration_pos", "layer", "layer_index", "layer_pos",
              "scope", "scope_pos", "slot", "next_op", "src_device_id", "dst_device_id"]


# ---- where each GPU operation comes from ---------------------------------------------------------------------------
def _text_matches(text: pd.Series, pattern: str) -> np.ndarray:
    """Whole-text regex match per row (evaluated once per distinct text)."""
    cat = text.astype("category")
    hits = [c for c in cat.cat.categories if re.fullmatch(pattern, str(c))]
    return cat.isin(hits).to_numpy(dtype=bool)


def _innermost(op: np.ndarray, rpos: np.ndarray, depth: np.ndarray, n_ops: int) -> np.ndarray:
    """For (op, range_pos) ancestor pairs: per op, the deepest range_pos (-1 where an op has none)."""
    out = np.full(n_ops, -1, dtype=np.int64)
    if len(op):
        order = np.lexsort((-depth[rpos], op))
        op_s, r_s = op[order], rpos[order]
        first = np.r_[True, op_s[1:] != op_s[:-1]]
        out[op_s[first]] = r_s[first]
    return out


def copy_like(projected: pd.DataFrame) -> np.ndarray:
    """Rows of projected GPU ops the rules look at: copies, memsets, and copy / layout-conversion kernels."""
    names = projected["name"].astype("category")
    hits = [c for c in names.cat.categories if _LAYOUT_KERNEL.search(str(c)) or _COPY_KERNEL.search(str(c))]
    return (projected["kind"] != "kernel").to_numpy(dtype=bool) | names.isin(hits).to_numpy(dtype=bool)


def _subset_pairs(pairs: pd.DataFrame, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local op index, range_pos) of the pairs whose op is in `ops` (projected row positions)."""
    op = pairs["op"].to_numpy().astype(np.int64)
    rpos = pairs["range_pos"].to_numpy().astype(np.int64)
    local = np.full(max(int(op.max(initial=-1)), int(ops.max(initial=-1))) + 1, -1, dtype=np.int64)
    local[ops] = np.arange(len(ops))
    keep = local[op] >= 0
    return local[op[keep]], rpos[keep]


def op_origins(nvtx: pd.DataFrame, pairs: pd.DataFrame, ops: np.ndarray, stage_names=DEFAULT_STAGES,
               iteration: str = DEFAULT_ITERATION, layer_depth: int = 0, layer_domain: str | None = None
               ) -> pd.DataFrame:
    """Per op in `ops` (projected row positions, in that order): stage (name, '' if none), stage_pos,
    iteration_pos, layer (name), layer_index (position k within inference), layer_pos, scope (stage name,
    'iteration' or the outermost range's name) and scope_pos (row positions in `nvtx`, -1 for none).
    `pairs` is ranges.range_op_pairs."""
    n_ops = len(ops)
    out = pd.DataFrame({"stage": [""] * n_ops, "stage_pos": -1, "iteration_pos": -1, "layer": "", "layer_index": -1,
                        "layer_pos": -1, "scope": "", "scope_pos": -1})
    if nvtx.empty or pairs.empty or n_ops == 0:
        return out
    text = nvtx["text"].to_numpy(dtype=object)
    depth = nvtx["depth"].to_numpy().astype(np.int64)
    op, rpos = _subset_pairs(pairs, np.asarray(ops, dtype=np.int64))
    is_stage = nvtx["text"].isin(list(stage_names)).to_numpy(dtype=bool)
    is_iteration = _text_matches(nvtx["text"], iteration)
    stage_pos = _innermost(op[is_stage[rpos]], rpos[is_stage[rpos]], depth, n_ops)
    iteration_pos = _innermost(op[is_iteration[rpos]], rpos[is_iteration[rpos]], depth, n_ops)
    outer = depth[rpos] == 0
    outer_pos = _innermost(op[outer], rpos[outer], depth, n_ops)
    lr = layer_ranges(nvtx, depth=layer_depth, domain=layer_domain)
    layer_pos = np.full(n_ops, -1, dtype=np.int64)
    if len(lr):
        is_layer = np.zeros(len(nvtx), dtype=bool)
        is_layer[lr["pos"].to_numpy()] = True
        layer_pos = _innermost(op[is_layer[rpos]], rpos[is_layer[rpos]], depth, n_ops)
    has_stage, has_layer = stage_pos >= 0, layer_pos >= 0
    out["stage_pos"], out["iteration_pos"], out["layer_pos"] = stage_pos, iteration_pos, layer_pos
    out.loc[has_stage, "stage"] = text[stage_pos[has_stage]]
    if has_layer.any():
        by_pos = lr.set_index("pos")
        out.loc[has_layer, "layer"] = by_pos["name"].reindex(layer_pos[has_layer]).to_numpy()
        out.loc[has_layer, "layer_index"] = by_pos["layer"].reindex(layer_pos[has_layer]).to_numpy()
    scope_pos = np.where(has_stage, stage_pos, np.where(iteration_pos >= 0, iteration_pos, outer_pos))
    out["scope_pos"] = scope_pos
    scope = np.where(has_stage, out["stage"].to_numpy(dtype=object), "")
    it_only = ~has_stage & (iteration_pos >= 0)
    scope[it_only] = "iteration"
    outer_only = ~has_stage & ~it_only & (outer_pos >= 0)
    scope[outer_only] = [layer_name(t) for t in text[outer_pos[outer_only]]]
    out["scope"] = scope
    return out


def kernel_ops(projected: pd.DataFrame, nvtx: pd.DataFrame, pairs: pd.DataFrame, stage_names=DEFAULT_STAGES,
               iteration: str = DEFAULT_ITERATION) -> pd.DataFrame:
    """Every projected kernel, thin: op, start, end, duration_ns (ns), device_id, stream_id, iteration_pos
    (innermost iteration range's row in `nvtx`, -1 for none) and in_stage (launched inside a stage range)."""
    idx = np.flatnonzero((projected["kind"] == "kernel").to_numpy(dtype=bool))
    iteration_pos = np.full(len(idx), -1, dtype=np.int64)
    in_stage = np.zeros(len(idx), dtype=bool)
    if len(idx) and not nvtx.empty and not pairs.empty:
        depth = nvtx["depth"].to_numpy().astype(np.int64)
        op, rpos = _subset_pairs(pairs, idx)
        is_iteration = _text_matches(nvtx["text"], iteration)
        iteration_pos = _innermost(op[is_iteration[rpos]], rpos[is_iteration[rpos]], depth, len(idx))
        in_stage[op[nvtx["text"].isin(list(stage_names)).to_numpy(dtype=bool)[rpos]]] = True
    k = projected.iloc[idx]
    return pd.DataFrame({"op": idx, "start": k["start"].to_numpy(), "end": k["end"].to_numpy(),
                         "duration_ns": k["duration_ns"].to_numpy(), "device_id": k["device_id"].to_numpy(),
                         "stream_id": k["stream_id"].to_numpy(), "iteration_pos": iteration_pos,
                         "in_stage": in_stage})


def next_called_op(projected: pd.DataFrame) -> np.ndarray:
    """Per projected op: the row of the next GPU op launched by the same thread (by call start, then GPU start),
    -1 for the last one and for ops without a launching call."""
    out = np.full(len(projected), -1, dtype=np.int64)
    called = np.flatnonzero(projected["api_start"].notna().to_numpy())
    if len(called) < 2:
        return out
    tid = projected["global_tid"].to_numpy()[called]
    seq = called[np.lexsort((projected["start"].to_numpy()[called], projected["api_start"].to_numpy()[called],
                             tid))]
    tid = projected["global_tid"].to_numpy()[seq]
    same = tid[1:] == tid[:-1]
    out[seq[:-1][same]] = seq[1:][same]
    return out


def copy_ops(projected: pd.DataFrame, ops: np.ndarray, origins: pd.DataFrame, memcpy: pd.DataFrame,
             memset: pd.DataFrame) -> pd.DataFrame:
    """The projected GPU ops at row positions `ops` (`copy_like`), with their origin (`op_origins` of the same
    rows), copy details and launching call (columns OP_COLUMNS).

    op: row in `projected`; operation: the copy direction ('Host-to-Device', ...), 'memset', or '' for kernels;
    api_end / api_ns: the launching call's end and duration (NA without a call); slot: ordinal of a copy / memset
    among those of the same operation launched on its thread within its scope instance, by call start (-1 outside
    every range); next_op: row in `projected` of the next GPU op launched by the same thread (-1 for none).
    """
    if len(ops) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OP_COLUMNS})
    ops = np.asarray(ops, dtype=np.int64)
    sel = projected.iloc[ops].reset_index(drop=True).assign(op=ops, next_op=next_called_op(projected)[ops])
    sel = pd.concat([sel, origins.reset_index(drop=True)], axis=1)
    sel["kind"] = sel["kind"].astype(str)
    if "bytes" not in sel:  # a trace with kernels only
        sel["bytes"] = np.nan
    keys = ["global_pid", "correlation_id", "start"]
    if len(memcpy):
        detail = memcpy[keys + ["operation", "src_kind", "dst_kind", "src_device_id", "dst_device_id"]].astype(
            {"operation": str}).drop_duplicates(keys)
        sel = sel.merge(detail, on=keys, how="left", sort=False)
    else:
        sel = sel.assign(operation=None, src_kind=None, dst_kind=None, src_device_id=np.nan, dst_device_id=np.nan)
    if len(memset):
        sel = sel.merge(memset[keys + ["mem_kind"]].drop_duplicates(keys), on=keys, how="left", sort=False)
    else:
        sel["mem_kind"] = None
    direction = sel["operation"].astype(object).fillna("Unknown").astype(str)
    sel["operation"] = np.where(sel["kind"] == "memset", "memset", np.where(sel["kind"] == "memcpy", direction, ""))
    for col in ("src_kind", "dst_kind", "mem_kind"):
        sel[col] = sel[col].astype(object).where(sel[col].notna(), "")
    if "api_end" not in sel:
        sel["api_end"] = np.nan
    sel.loc[sel["api_start"].isna(), "api_end"] = np.nan
    sel["api_ns"] = sel["api_end"] - sel["api_start"]
    sel["api_name"] = sel["api_name"].astype(object).where(sel["api_name"].notna(), "")
    sel["slot"] = -1
    mem = (sel["kind"] != "kernel") & (sel["scope_pos"] >= 0)
    if mem.any():
        sub = sel.loc[mem].assign(_t=sel.loc[mem, "api_start"].fillna(sel.loc[mem, "start"]),
                                  _tid=sel.loc[mem, "global_tid"].fillna(-1))
        sub = sub.sort_values("_t", kind="stable")
        sel.loc[sub.index, "slot"] = sub.groupby(["scope_pos", "_tid", "operation"], sort=False).cumcount()
    sel["slot"] = sel["slot"].astype("int64")
    return sel[OP_COLUMNS]


# ---- rules: each returns the flagged rows of `ops` with `wasted_ns` (and rule columns) -----------------------------
def _copies(ops: pd.DataFrame) -> pd.DataFrame:
    return ops[ops["kind"] == "memcpy"]


def _loop_copies(ops: pd.DataFrame, in_iterations: bool) -> pd.DataFrame:
    """Copies inside measured iterations when the trace's GPU work is marked by iteration ranges
    (`in_iterations`: set-up and warm-up left out), else all."""
    c = _copies(ops)
    return c[c["iteration_pos"] >= 0] if in_iterations else c


def _api_matches(names: pd.Series, pattern: re.Pattern) -> np.ndarray:
    cat = names.astype("category")
    hits = [c for c in cat.cat.categories if pattern.match(str(c))]
    return cat.isin(hits).to_numpy(dtype=bool)


def pageable_memcpy(ops: pd.DataFrame) -> pd.DataFrame:
    """Async-API copies with a pageable source or destination (nsys cuda_memcpy_async). Waste: call ns."""
    c = _copies(ops)
    hit = c[((c["src_kind"] == "Pageable") | (c["dst_kind"] == "Pageable")).to_numpy()
            & _api_matches(c["api_name"], _ASYNC_MEMCPY_API)]
    return hit.assign(wasted_ns=hit["api_ns"].fillna(0))


def sync_memcpy(ops: pd.DataFrame) -> pd.DataFrame:
    """Copies launched by a synchronous memcpy API, as nsys's cuda_memcpy_sync rule selects them: not copies within
    one device (src and dst device ids equal; by direction where the export lacks the ids) and not host-to-device
    copies of at most 64,000 bytes (which return once staged). Waste: call ns."""
    c = _copies(ops)
    sync_api = _api_matches(c["api_name"], _MEMCPY_API) & ~_api_matches(c["api_name"], _ASYNC_MEMCPY_API)
    src, dst = c["src_device_id"], c["dst_device_id"]
    by_ids = src.notna().to_numpy()
    same_device = np.where(by_ids, (src == dst).to_numpy(),
                           (c["operation"].isin(DEVICE_COPY_OPERATIONS) & (c["operation"] != P2P)).to_numpy())
    staged = ((c["operation"] == H2D) & (c["bytes"] <= SYNC_H2D_STAGED_BYTES)).to_numpy()
    hit = c[sync_api & ~same_device & ~staged]
    return hit.assign(wasted_ns=hit["api_ns"].fillna(0))


def sync_memset(ops: pd.DataFrame) -> pd.DataFrame:
    """Memsets by a synchronous memset API on pinned or managed memory (nsys cuda_memset_sync). Waste: call ns."""
    s = ops[ops["kind"] == "memset"]
    names = s["api_name"].astype(str)
    sync_api = _api_matches(names, _MEMSET_API) & ~names.str.contains("async", case=False).to_numpy()
    hit = s[sync_api & s["mem_kind"].isin(["Pinned", "Managed"]).to_numpy()]
    return hit.assign(wasted_ns=hit["api_ns"].fillna(0))


def _host_kind(rows: pd.DataFrame) -> pd.Series:
    """The host side's memory kind of a copy (dst for D2H, src otherwise)."""
    return rows["dst_kind"].where(rows["operation"] == D2H, rows["src_kind"])


def round_trips(ops: pd.DataFrame) -> pd.DataFrame:
    """D2H copies whose next GPU op on the same thread (`next_op`) is an H2D copy of the same bytes, device and
    host kind.

    One row per pair (the D2H row) with the return leg in h2d_op, h2d_start, h2d_end, h2d_ns, h2d_api_end;
    bytes, duration_ns and api_ns cover both legs. Waste: GPU ns + call ns of both copies."""
    cols = list(ops.columns) + ["h2d_op", "h2d_start", "h2d_end", "h2d_ns", "h2d_api_end", "wasted_ns"]
    seq = ops[(ops["operation"] == D2H) & (ops["next_op"] >= 0)]
    if seq.empty:
        return pd.DataFrame(columns=cols)
    nxt = ops.set_index("op").reindex(seq["next_op"].to_numpy()).reset_index()
    pair = ((nxt["operation"] == H2D).to_numpy() & (nxt["bytes"].to_numpy() == seq["bytes"].to_numpy())
            & (nxt["device_id"].to_numpy() == seq["device_id"].to_numpy())
            & (_host_kind(nxt).to_numpy() == _host_kind(seq).to_numpy()))
    if not pair.any():
        return pd.DataFrame(columns=cols)
    d, h = seq[pair], nxt[pair]
    out = d.assign(h2d_op=h["op"].astype("int64").to_numpy(), h2d_start=h["start"].to_numpy(),
                   h2d_end=h["end"].to_numpy(), h2d_ns=h["duration_ns"].to_numpy(),
                   h2d_api_end=h["api_end"].to_numpy())
    out["bytes"] = d["bytes"].to_numpy() + h["bytes"].to_numpy()
    out["duration_ns"] = d["duration_ns"].to_numpy() + h["duration_ns"].to_numpy()
    out["api_ns"] = d["api_ns"].fillna(0).to_numpy() + h["api_ns"].fillna(0).to_numpy()
    out["wasted_ns"] = out["duration_ns"] + out["api_ns"]
    return out[cols]


def scope_instances(nvtx: pd.DataFrame, scopes, iteration: str = DEFAULT_ITERATION) -> pd.Series:
    """Instances per (scope name, global_tid) of the given scope names, named as `op_origins` names scopes: an
    iteration range as 'iteration', a stage by its text, any other outermost range by its layer_name."""
    scopes = set(scopes)
    if nvtx.empty or not scopes:
        return pd.Series(dtype="int64")
    text = nvtx["text"].astype("category")
    cats = [str(c) for c in text.cat.categories]
    is_it = np.array([re.fullmatch(iteration, c) is not None for c in cats], dtype=bool)
    exact = np.array([c in scopes for c in cats], dtype=bool) & ~is_it
    outer = np.array([layer_name(c) in scopes for c in cats], dtype=bool) & ~is_it & ~exact
    label = np.array(["iteration" if i else (c if e else layer_name(c)) for c, i, e in zip(cats, is_it, exact)],
                     dtype=object)
    codes = text.cat.codes.to_numpy()
    ok = codes >= 0
    keep = np.zeros(len(nvtx), dtype=bool)
    keep[ok] = (is_it & ("iteration" in scopes) | exact)[codes[ok]]
    keep[ok] |= outer[codes[ok]] & (nvtx["depth"].to_numpy()[ok] == 0)
    frame = pd.DataFrame({"scope": label[codes[keep]], "tid": nvtx["global_tid"].to_numpy()[keep]})
    return frame.groupby(["scope", "tid"]).size()


def input_sites(h: pd.DataFrame, site: list[str], stage_names=DEFAULT_STAGES) -> pd.DataFrame:
    """The upload site taken as each thread's per-iteration model input: in each iteration, the site of the first
    H2D copy (by call start); per thread the site that is first most often. Without iteration ranges: the first
    site in stage order, then slot."""
    in_it = h[h["iteration_pos"] >= 0]
    if len(in_it):
        first = in_it.sort_values("api_start", kind="stable").drop_duplicates(["iteration_pos"])
        counts = first.groupby(site, sort=False).size().rename("n").reset_index()
        return counts.sort_values("n", ascending=False, kind="stable").drop_duplicates(["global_tid"])[site]
    order = {s: i for i, s in enumerate(stage_names)}
    ranked = h.assign(_o=h["scope"].map(lambda s: order.get(s, len(order))))
    ranked = ranked.sort_values(["_o", "slot", "api_start"], kind="stable")
    return ranked.drop_duplicates(["global_tid"])[site]


def repeated_uploads(ops: pd.DataFrame, nvtx: pd.DataFrame, stage_names=DEFAULT_STAGES,
                     iteration: str = DEFAULT_ITERATION) -> pd.DataFrame:
    """H2D copies at a call site (scope, slot, thread, API, host kind) that copies the same bytes exactly once in
    every instance of its scope (at least 2 instances), except the input site (`input_sites`) and the return
    legs of round trips. Waste: GPU ns + call ns of each copy."""
    cols = list(ops.columns) + ["wasted_ns"]
    h = ops[(ops["operation"] == H2D) & (ops["scope_pos"] >= 0) & ops["global_tid"].notna()]
    if h.empty:
        return pd.DataFrame(columns=cols)
    h = h.assign(host_kind=_host_kind(h))
    site = ["scope", "slot", "global_tid", "api_name", "host_kind"]
    g = h.groupby(site, sort=False)
    sites = pd.DataFrame({"copies": g.size(), "instances": g["scope_pos"].nunique(),
                          "sizes": g["bytes"].nunique()}).reset_index()
    inst = scope_instances(nvtx, sites["scope"].unique(), iteration)
    sites["scope_instances"] = [int(inst.get((s, int(t)), 0)) for s, t in zip(sites["scope"], sites["global_tid"])]
    every = (sites["instances"] >= 2) & (sites["instances"] == sites["scope_instances"]) \
        & (sites["copies"] == sites["instances"]) & (sites["sizes"] == 1)
    keep = sites.loc[every, site].merge(input_sites(h, site, stage_names), on=site, how="left", indicator=True)
    keep = keep[keep["_merge"] == "left_only"][site]
    hit = h.merge(keep, on=site, how="inner", sort=False)
    hit = hit[~hit["op"].isin(set(round_trips(ops)["h2d_op"].astype("int64")))].drop(columns="host_kind")
    return hit.assign(wasted_ns=hit["duration_ns"] + hit["api_ns"].fillna(0))[cols]


def device_copies(ops: pd.DataFrame, staged: bool, stage: str = "inference") -> pd.DataFrame:
    """D2D / peer copies and copy or layout-conversion kernels inside `stage` (whole trace when no GPU op has a
    stage: `staged` False), with `what` ('D2D memcpy', 'Peer-to-Peer memcpy', 'layout kernel', 'copy kernel').
    Waste: GPU ns."""
    cols = list(ops.columns) + ["what", "wasted_ns"]
    is_copy = (ops["kind"] == "memcpy") & ops["operation"].isin(DEVICE_COPY_OPERATIONS)
    is_kernel = (ops["kind"] == "kernel").to_numpy()
    names = ops["name"].astype("category")
    layout = np.zeros(len(ops), dtype=bool)
    copyk = np.zeros(len(ops), dtype=bool)
    if is_kernel.any():
        uniq = [str(c) for c in names.cat.categories]
        layout = is_kernel & names.isin([n for n in uniq if _LAYOUT_KERNEL.search(n)]).to_numpy()
        copyk = is_kernel & names.isin([n for n in uniq if _COPY_KERNEL.search(n)]).to_numpy() & ~layout
    sel = is_copy.to_numpy() | layout | copyk
    if staged:
        sel &= (ops["stage"] == stage).to_numpy()
    hit = ops[sel]
    what = np.where(layout[sel], "layout kernel", np.where(copyk[sel], "copy kernel",
                    np.where(hit["operation"] == P2P, "Peer-to-Peer memcpy", hit["operation"] + " memcpy")))
    return hit.assign(what=what, wasted_ns=hit["duration_ns"])[cols]


def tiny_copies(ops: pd.DataFrame, in_iterations: bool, max_bytes: int = TINY_BYTES,
                min_per_instance: float = TINY_MIN_PER_INSTANCE) -> pd.DataFrame:
    """Copies of at most `max_bytes` whose call outlasts the transfer, in groups (scope, direction, API, thread)
    with at least `min_per_instance` such copies per scope instance, inside measured iterations when marked.
    Waste: call ns beyond the transfer ns."""
    c = _loop_copies(ops, in_iterations)
    small = c[(c["bytes"] <= max_bytes).to_numpy() & (c["api_ns"] > c["duration_ns"]).to_numpy()]
    if small.empty:
        return small.assign(wasted_ns=pd.Series(dtype="int64"))
    key = ["scope", "operation", "api_name", "global_tid"]
    g = small.groupby(key, sort=False)
    per = (g.size() / g["scope_pos"].nunique().clip(lower=1)).rename("per_instance").reset_index()
    keep = per[per["per_instance"] >= min_per_instance][key]
    hit = small.merge(keep, on=key, how="inner", sort=False)
    return hit.assign(wasted_ns=(hit["api_ns"] - hit["duration_ns"]).clip(lower=0))


def covered_ns(starts: np.ndarray, ends: np.ndarray, busy_start: np.ndarray, busy_end: np.ndarray) -> np.ndarray:
    """ns of each [start, end) covered by the union of the busy intervals (any order, may overlap)."""
    if len(busy_start) == 0 or len(starts) == 0:
        return np.zeros(len(starts), dtype=np.int64)
    order = np.argsort(busy_start, kind="stable")
    s, e = busy_start[order].astype(np.int64), busy_end[order].astype(np.int64)
    run_end = np.maximum.accumulate(e)
    new = np.r_[True, s[1:] > run_end[:-1]]
    ms, me = s[new], np.maximum.reduceat(run_end, np.flatnonzero(new))
    cum = np.r_[0, np.cumsum(me - ms)]

    def upto(t):
        i = np.searchsorted(ms, t, side="right") - 1
        inside = np.clip(t - ms[np.maximum(i, 0)], 0, (me - ms)[np.maximum(i, 0)])
        return np.where(i >= 0, cum[np.maximum(i, 0)] + inside, 0)

    return (upto(ends.astype(np.int64)) - upto(starts.astype(np.int64))).astype(np.int64)


def unoverlapped(ops: pd.DataFrame, kernels: pd.DataFrame, in_iterations: bool,
                 min_exposed_ns: int = UNOVERLAPPED_MIN_NS) -> pd.DataFrame:
    """Copies with at least `min_exposed_ns` during which no kernel ran on their device, where the iteration
    they run in (the trace when none) has at least that much kernel time to hide them behind. Adds exposed_ns,
    same_stream_as_kernels. Inside measured iterations when marked. Waste: exposed ns."""
    cols = list(ops.columns) + ["exposed_ns", "same_stream_as_kernels", "wasted_ns"]
    c = _loop_copies(ops, in_iterations)
    k = kernels
    if c.empty or k.empty:
        return pd.DataFrame(columns=cols)
    exposed = np.zeros(len(c), dtype=np.int64)
    for dev in pd.unique(c["device_id"]):
        on_c = (c["device_id"] == dev).to_numpy()
        kd = k[k["device_id"] == dev]
        cov = covered_ns(c["start"].to_numpy()[on_c], c["end"].to_numpy()[on_c], kd["start"].to_numpy(),
                         kd["end"].to_numpy())
        exposed[on_c] = c["duration_ns"].to_numpy()[on_c] - cov
    c = c.assign(exposed_ns=exposed)
    kernel_ns = k.groupby("iteration_pos")["duration_ns"].sum()
    room = np.where(c["iteration_pos"] >= 0, kernel_ns.reindex(c["iteration_pos"]).fillna(0).to_numpy(),
                    k["duration_ns"].sum())
    hit = c[(c["exposed_ns"] >= min_exposed_ns).to_numpy() & (room >= c["exposed_ns"].to_numpy())]
    streams = set(k[["device_id", "stream_id"]].drop_duplicates().itertuples(index=False, name=None))
    same = [(d, s) in streams for d, s in zip(hit["device_id"], hit["stream_id"])]
    return hit.assign(same_stream_as_kernels=same, wasted_ns=hit["exposed_ns"])[cols]


# ---- findings --------------------------------------------------------------------------------------------------------
GROUP_KEYS = {
    "pageable_memcpy": ["stage", "scope", "slot", "operation", "src_kind", "dst_kind", "api_name", "global_tid"],
    "sync_memcpy": ["stage", "scope", "slot", "operation", "api_name", "global_tid"],
    "sync_memset": ["stage", "scope", "slot", "api_name", "global_tid"],
    "round_trip": ["stage", "scope", "slot", "api_name", "global_tid"],
    "repeated_upload": ["stage", "scope", "slot", "api_name", "global_tid"],
    "device_to_device": ["stage", "layer_index", "layer", "what", "global_tid"],
    "tiny_copies": ["stage", "scope", "operation", "api_name", "global_tid"],
    "unoverlapped": ["stage", "scope", "slot", "operation", "global_tid", "stream_id"],
}


def _int(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return int(v)


def _window(rows: pd.DataFrame, nvtx: pd.DataFrame) -> tuple[int, int]:
    """Timeline window (ns) on a finding's first occurrence: its CUDA call(s) and GPU op(s) (both legs of a round
    trip) and, inside a layer, the layer range; padded each side by its own length, at least 50 µs."""
    r = rows.iloc[0]
    lo = min(v for v in (r["start"], r["api_start"]) if pd.notna(v))
    hi_vals = [r["end"], r.get("h2d_end"), r["api_end"], r.get("h2d_api_end")]
    hi = max(v for v in hi_vals if v is not None and pd.notna(v))
    if r["layer_pos"] >= 0 and len(nvtx):
        lo, hi = min(lo, nvtx["start"].iloc[r["layer_pos"]]), max(hi, nvtx["end"].iloc[r["layer_pos"]])
    pad = max(hi - lo, 50_000)
    return int(lo - pad), int(hi + pad)


def _mode(values: pd.Series):
    """The most frequent non-empty value ('' when there is none)."""
    counts = values.value_counts()
    counts = counts[(counts > 0).to_numpy() & (counts.index.astype(str) != "")]
    return counts.index[0] if len(counts) else ""


def _evidence(rule: str, rows: pd.DataFrame, f: dict) -> str:
    """One line: where, what, how often, how big, which call on which thread."""
    size = rows["bytes"].iloc[0] if rows["bytes"].nunique() == 1 else None
    each = f"{int(size):,} B each" if size is not None and pd.notna(size) else f"{f['bytes']:,} B in all"
    where = f["stage"] or "outside any stage"
    if f["layer"]:
        where += f" / layer {f['layer_index']} {f['layer'][:60]}"
    slot = f" #{f['slot']}" if f["slot"] is not None and f["slot"] >= 0 else ""
    what = f"{f['operation'] or 'copy'}{slot}"
    if rule == "pageable_memcpy":
        what += f" {f['src_kind']}->{f['dst_kind']}"
    elif rule == "round_trip":
        what = f"Device-to-Host{slot} then straight back Host-to-Device"
        each = f"{int(rows['bytes'].iloc[0]) // 2:,} B each way"
    elif rule == "device_to_device":
        what = f"{rows['what'].iloc[0]} {_mode(rows['name'])[:60]}"
        each = f"{f['gpu_ns']:,} ns in all" if rows["kind"].iloc[0] == "kernel" else each
    elif rule == "unoverlapped":
        what += f", {int(rows['exposed_ns'].sum()):,} ns with no kernel running"
    elif rule == "sync_memset":
        what = f"memset{slot} of {_mode(rows['mem_kind'])} memory"
    call = f"{f['api_name'] or 'no API call'} on thread {f['tid']}"
    return f"{where}: {what}; {f['count']}x, {each}; {call}"


def findings(rule: str, flagged: pd.DataFrame, nvtx: pd.DataFrame, n_iterations: int) -> list[dict]:
    """Group a rule's flagged rows by call site (GROUP_KEYS[rule]) into finding dicts (JSON-ready)."""
    if flagged.empty:
        return []
    keys = GROUP_KEYS[rule]
    df = flagged.assign(global_tid=flagged["global_tid"].fillna(-1).astype("int64"))
    for k in keys:
        if k not in df.columns:
            df[k] = "" if k in ("what",) else -1
    df = df.sort_values("start", kind="stable")
    out = []
    for _, rows in df.groupby(keys, sort=False, dropna=False):
        first = rows.iloc[0]
        tid = int(first["global_tid"])
        in_it = int((rows["iteration_pos"] >= 0).sum())
        f = {
            "rule": rule, "title": TITLES[rule], "count": int(len(rows)), "bytes": int(rows["bytes"].fillna(0).sum()),
            "gpu_ns": int(rows["duration_ns"].sum()), "api_ns": int(rows["api_ns"].fillna(0).sum()),
            "wasted_ns": int(rows["wasted_ns"].fillna(0).sum()), "waste_basis": WASTE_BASIS[rule],
            "in_iterations": in_it, "per_iteration": (in_it / n_iterations) if n_iterations else None,
            "stage": str(first["stage"]), "scope": str(first["scope"]),
            "slot": _int(first["slot"]) if "slot" in keys else None,
            "layer": str(_mode(rows["layer"])), "layer_index": _int(first["layer_index"]) if first["layer"] else None,
            "layers": int(rows.loc[rows["layer"] != "", "layer"].nunique()),
            "operation": str(first["operation"]), "src_kind": str(first["src_kind"]),
            "dst_kind": str(first["dst_kind"]), "api_name": str(first["api_name"]),
            "pid": (tid >> 24) & 0xFFFFFF if tid >= 0 else None, "tid": tid & 0xFFFFFF if tid >= 0 else None,
            "global_tid": tid if tid >= 0 else None,
            "streams": sorted(int(s) for s in pd.unique(rows["stream_id"].dropna())),
            "devices": sorted(int(d) for d in pd.unique(rows["device_id"].dropna())),
            "first_start_ns": int(first["start"]),
            "suggestion": SUGGESTIONS[rule],
        }
        f["window_start_ns"], f["window_end_ns"] = _window(rows, nvtx)
        occ = []
        for _, r in rows.head(OCCURRENCES).iterrows():
            o = {"start_ns": int(r["start"]), "end_ns": int(r["end"]), "duration_ns": int(r["duration_ns"]),
                 "bytes": _int(r["bytes"]), "stream_id": _int(r["stream_id"]), "api_start_ns": _int(r["api_start"]),
                 "api_ns": _int(r["api_ns"]), "name": str(r["name"])}
            if rule == "round_trip":
                o.update({"h2d_start_ns": int(r["h2d_start"]), "h2d_end_ns": int(r["h2d_end"])})
            if rule == "unoverlapped":
                o["exposed_ns"] = int(r["exposed_ns"])
            occ.append(o)
        f["occurrences"] = occ
        if rule == "unoverlapped":
            f["same_stream_as_kernels"] = bool(rows["same_stream_as_kernels"].all())
        if rule == "device_to_device":
            f["what"] = str(first["what"])
            f["kernel"] = str(_mode(rows["name"])) if first["kind"] == "kernel" else ""
        f["evidence"] = _evidence(rule, rows, f)
        out.append(f)
    return out


def find_copies(ops: pd.DataFrame, kernels: pd.DataFrame, nvtx: pd.DataFrame, stage_names=DEFAULT_STAGES,
                iteration: str = DEFAULT_ITERATION, rules=RULES) -> list[dict]:
    """Run the rules over `copy_ops` rows and `kernel_ops`; findings ranked by wasted_ns (then GPU ns), largest
    first."""
    in_iterations = bool((ops["iteration_pos"] >= 0).any() or (kernels["iteration_pos"] >= 0).any())
    staged = bool((ops["stage"] != "").any() or kernels["in_stage"].any())
    if nvtx.empty:
        n_iterations = 0
    else:
        n_iterations = int(_text_matches(nvtx["text"], iteration).sum())
    flagged = {
        "pageable_memcpy": lambda: pageable_memcpy(ops),
        "sync_memcpy": lambda: sync_memcpy(ops),
        "sync_memset": lambda: sync_memset(ops),
        "round_trip": lambda: round_trips(ops),
        "repeated_upload": lambda: repeated_uploads(ops, nvtx, stage_names, iteration),
        "device_to_device": lambda: device_copies(ops, staged),
        "tiny_copies": lambda: tiny_copies(ops, in_iterations),
        "unoverlapped": lambda: unoverlapped(ops, kernels, in_iterations),
    }
    out = []
    for rule in rules:
        out.extend(findings(rule, flagged[rule](), nvtx, n_iterations))
    return sorted(out, key=lambda f: (-f["wasted_ns"], -f["gpu_ns"], RULES.index(f["rule"])))


def _stage_names(a) -> tuple:
    names = [n for n in a.stages["name"] if n != "other"] if len(a.stages) else []
    return tuple(names) or DEFAULT_STAGES


def analysis_copy_ops(a, layer_depth: int = 0, layer_domain: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(`copy_ops`, `kernel_ops`) of an Analysis (summary.analyze)."""
    t = a.trace
    stage_names = _stage_names(a)
    rows = np.flatnonzero(copy_like(a.projected)) if len(a.projected) else np.array([], dtype=np.int64)
    origins = op_origins(t.nvtx, a.pairs, rows, stage_names, DEFAULT_ITERATION, layer_depth, layer_domain)
    ops = copy_ops(a.projected, rows, origins, t.memcpy, t.memset)
    return ops, kernel_ops(a.projected, t.nvtx, a.pairs, stage_names, DEFAULT_ITERATION)


def copy_findings(a, layer_depth: int = 0, layer_domain: str | None = None) -> list[dict]:
    """All memory-copy findings of an Analysis, ranked by wasted time (the `copy_findings` JSON key)."""
    ops, kernels = analysis_copy_ops(a, layer_depth, layer_domain)
    return find_copies(ops, kernels, a.trace.nvtx, _stage_names(a))


def copy_report(a, layer_depth: int = 0, layer_domain: str | None = None
                ) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    """(findings ranked by wasted time, rule_summary, copy_totals) of an Analysis: what the app page shows."""
    ops, kernels = analysis_copy_ops(a, layer_depth, layer_domain)
    found = find_copies(ops, kernels, a.trace.nvtx, _stage_names(a))
    return found, rule_summary(found), copy_totals(ops)


def copy_totals(ops: pd.DataFrame) -> pd.DataFrame:
    """Per stage ('' = outside every stage) and operation (direction, or 'memset'): count, bytes, gpu_ns."""
    mem = ops[ops["kind"] != "kernel"]
    cols = ["stage", "operation", "count", "bytes", "gpu_ns"]
    if mem.empty:
        return pd.DataFrame(columns=cols)
    g = mem.groupby(["stage", "operation"], sort=True)
    out = pd.DataFrame({"count": g.size(), "bytes": g["bytes"].sum(), "gpu_ns": g["duration_ns"].sum()})
    return out.reset_index().astype({"count": "int64", "bytes": "int64", "gpu_ns": "int64"})[cols]


def rule_summary(found: list[dict]) -> pd.DataFrame:
    """Per rule: findings, count, bytes, gpu_ns, wasted_ns (every rule listed, zeros where nothing was found)."""
    df = pd.DataFrame(found, columns=["rule", "count", "bytes", "gpu_ns", "wasted_ns"])
    g = df.groupby("rule")
    out = pd.DataFrame({"findings": g.size(), "count": g["count"].sum(), "bytes": g["bytes"].sum(),
                        "gpu_ns": g["gpu_ns"].sum(), "wasted_ns": g["wasted_ns"].sum()}).reindex(list(RULES))
    return out.fillna(0).astype("int64").reset_index()
