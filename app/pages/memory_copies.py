"""Memory copies: the copy findings of the current run, ranked by wasted time, each with its evidence and a jump
to the Timeline window where it happens; totals of bytes and GPU time per direction per stage.

Lays out what profiler.analysis.copies computes (no SQL, no analysis here). Timeline jumps use the dashboard's
convention (app/common.py): st.session_state["timeline_window"] = (start_ns, end_ns), then
st.switch_page("pages/timeline.py").
"""

from __future__ import annotations

import common
import pandas as pd
import streamlit as st

from profiler.analysis import copies

MAX_SHOWN = 100


@st.cache_resource(max_entries=6, show_spinner="Looking for wasteful memory copies…")
def copy_report(trace_key: str, _a) -> tuple[list, pd.DataFrame, pd.DataFrame]:
    """copies.copy_report of one analysis, computed once per trace file (key: its SHA-256)."""
    return copies.copy_report(_a)


def render_finding(i: int, f: dict) -> None:
    head = f"**{common.fmt_ms(f['wasted_ns'])}** · `{f['rule']}` · {f['evidence']}"
    with st.expander(head, expanded=i < 3):
        st.markdown(f"**{f['title']}.** {f['suggestion']}")
        st.caption(f"Wasted time = {f['waste_basis']}: an estimate; rules can flag the same copy twice "
                   "(definitions in docs/notes/copies.md).")
        c = st.columns(5)
        per_it = f"{f['per_iteration']:.2f} per iteration" if f["per_iteration"] is not None else "no iterations"
        c[0].metric("Occurrences", f"{f['count']:,}", help=per_it)
        c[1].metric("Bytes", common.fmt_bytes(f["bytes"]))
        c[2].metric("GPU time", common.fmt_ns(f["gpu_ns"]))
        c[3].metric("CUDA call time", common.fmt_ns(f["api_ns"]))
        c[4].metric("Wasted (est.)", common.fmt_ns(f["wasted_ns"]))
        where = {
            "stage": f["stage"] or "outside any stage",
            "call site": (f"{f['operation']} #{f['slot']} of each {f['scope']}" if f["slot"] is not None
                          and f["slot"] >= 0 else f["operation"] or "—"),
            "layer": f"#{f['layer_index']} {f['layer']}" if f["layer"] else "—",
            "CUDA API call": f["api_name"] or "—",
            "thread (pid/tid)": f"{f['pid']}/{f['tid']}" if f["tid"] is not None else "—",
            "streams": ", ".join(map(str, f["streams"])) or "—",
        }
        if f.get("kernel"):
            where["kernel"] = common.short_kernel_name(f["kernel"], 90)
        st.table(pd.DataFrame({"where": list(where), "": [str(v) for v in where.values()]}).set_index("where"))
        occ = pd.DataFrame(f["occurrences"])
        st.markdown(f"First {len(occ)} of {f['count']} occurrences (ns on the trace clock)")
        st.dataframe(occ, hide_index=True, width="stretch")
        common.timeline_button(f"Show in timeline ({common.fmt_ns(f['window_end_ns'] - f['window_start_ns'])} "
                               "around the first occurrence)", f["window_start_ns"], f["window_end_ns"],
                               key=f"jump_{i}")


def render_totals(totals: pd.DataFrame) -> None:
    st.subheader("Copies per stage and direction")
    if totals.empty:
        st.write("This trace holds no copies or memsets.")
        return
    t = totals.assign(stage=totals["stage"].replace("", "outside any stage"))
    left, right = st.columns(2)
    left.markdown("Bytes (MB)")
    left.bar_chart(t.assign(MB=t["bytes"] / 1e6), x="stage", y="MB", color="operation", stack=False)
    right.markdown("GPU time (ms)")
    right.bar_chart(t.assign(ms=t["gpu_ns"] / 1e6), x="stage", y="ms", color="operation", stack=False)
    st.dataframe(t.assign(size=t["bytes"].map(common.fmt_bytes), time=t["gpu_ns"].map(common.fmt_ns)),
                 hide_index=True, width="stretch",
                 column_order=["stage", "operation", "count", "size", "time", "bytes", "gpu_ns"])


def render(a, trace_key: str) -> None:
    """The page body for one Analysis."""
    found, summary, totals = copy_report(trace_key, a)
    c = st.columns(3)
    c[0].metric("Findings", len(found))
    c[1].metric("Estimated wasted time", common.fmt_ms(summary["wasted_ns"].sum()),
                help="Sum over findings; a copy flagged by two rules counts twice.")
    c[2].metric("Copies and memsets", f"{int(totals['count'].sum()) if len(totals) else 0:,}")
    st.subheader("Rules")
    st.dataframe(summary.assign(description=summary["rule"].map(copies.TITLES),
                                wasted=summary["wasted_ns"].map(common.fmt_ns)),
                 hide_index=True, width="stretch",
                 column_order=["rule", "description", "findings", "count", "bytes", "gpu_ns", "wasted"])
    st.subheader("Findings, by wasted time")
    if not found:
        st.success("No wasteful copies found in this trace.")
    present = [r for r in copies.RULES if any(f["rule"] == r for f in found)]
    rules = st.multiselect("Rules", present, default=present, key="copy_rules")
    shown = [f for f in found if f["rule"] in rules]
    for i, f in enumerate(shown[:MAX_SHOWN]):
        render_finding(i, f)
    if len(shown) > MAX_SHOWN:
        st.caption(f"{len(shown) - MAX_SHOWN} more findings not shown (all are in `summarize --json`).")
    render_totals(totals)


def main() -> None:
    st.title("Memory copies")
    st.caption("Copies that waste time and where each comes from: stage, layer, CUDA call and thread. nsys's "
               "expert rules catch pageable and synchronous copies (50 rows); these rules also find round trips, "
               "re-uploaded constants, layout copies, tiny copies and copies that do not overlap compute.")
    run = common.require_run()
    render(common.load_analysis(run), run.sha256)


if __name__ == "__main__":  # Streamlit runs pages as __main__; tests import render()
    main()
