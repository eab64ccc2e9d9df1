"""Catalogue: every run in the store (bundled, captured, uploaded), where it lives, and removal (asks first)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import common

store = common.get_store()
st.title("Run catalogue")
st.caption(f"Store: `{store.root}` (set `TRTSCOPE_HOME` to move it). Bundled runs come from `{common.samples_dir()}`, "
           f"captured runs from `{common.captured_dir()}`; uploads are copied into the store.")

runs = store.list_runs()
if not runs:
    st.info("The catalogue is empty: upload an nsys export on the Upload page.")
    st.stop()


def _size(path) -> str:
    try:
        return common.fmt_bytes(path.stat().st_size)
    except OSError:
        return "missing"


table = pd.DataFrame([{
    "name": r.name, "source": r.source,
    "device": (r.summary.get("device") or {}).get("name", ""),
    "precision": (r.metadata or {}).get("precision", ""), "batch": (r.metadata or {}).get("batch", ""),
    "kernel names": len(r.summary.get("kernels", [])), "layers": len(r.summary.get("layers", [])),
    "trace file": _size(r.trace_path), "added": r.created[:19].replace("T", " "), "id": r.id,
} for r in runs])
st.dataframe(table, hide_index=True, width="stretch")

st.subheader("Open or remove a run")
by_id = {r.id: r for r in runs}
current = st.session_state.get(common.RUN_KEY)
ids = list(by_id)
pick = st.selectbox("Run", ids, index=ids.index(current) if current in ids else 0,
                    format_func=lambda i: by_id[i].label, key="catalogue_pick")
c1, c2, _ = st.columns([1, 1, 5])
if c1.button("Open", icon=":material/open_in_new:", key="catalogue_open"):
    st.session_state[common.PENDING_RUN_KEY] = pick
    st.session_state[common.RUN_KEY] = pick
    st.switch_page("pages/overview.py")
if c2.button("Remove…", icon=":material/delete:", key="catalogue_remove"):
    st.session_state["confirm_remove"] = pick

victim = st.session_state.get("confirm_remove")
if victim in by_id:
    run = by_id[victim]
    note = (" It is a bundled sample: it comes back the next time the app starts." if run.source == "bundled"
            else " Its stored copy of the trace is deleted too (unless another run uses the same file).")
    st.warning(f"Remove **{run.name}** ({run.source}) from the catalogue?{note}", icon=":material/warning:")
    y, n, _ = st.columns([1, 1, 4])
    if y.button("Yes, remove it", type="primary", key="confirm_yes"):
        store.remove(victim)
        st.session_state.pop("confirm_remove", None)
        if st.session_state.get(common.RUN_KEY) == victim:
            st.session_state.pop(common.RUN_KEY, None)
            st.session_state.pop("run_picker", None)
        st.session_state["flash"] = f"Removed “{run.name}”."
        st.rerun()
    if n.button("Cancel", key="confirm_no"):
        st.session_state.pop("confirm_remove", None)
        st.rerun()
