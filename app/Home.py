"""trtscope dashboard: `streamlit run app/Home.py` from the repository root (so .streamlit/config.toml is read).

Registers the bundled runs (data/samples/*) and captured runs (runs/*) in the run store, draws the run picker in
the sidebar and hands over to the page picked in the navigation. Pages live in app/pages/; the conventions they
follow are in app/common.py's docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
for p in (str(APP_DIR.parent), str(APP_DIR)):  # `import profiler` and `import common` with no install step
    if p not in sys.path:
        sys.path.insert(0, p)

import streamlit as st  # noqa: E402

import common  # noqa: E402

st.set_page_config(page_title="trtscope", page_icon=":material/speed:", layout="wide")

PAGES = {
    "Run": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/timeline.py", title="Timeline", icon=":material/timeline:"),
        st.Page("pages/layers.py", title="Layers", icon=":material/layers:"),
        st.Page("pages/tensor_cores.py", title="Tensor Cores", icon=":material/memory:"),
        st.Page("pages/memory_copies.py", title="Memory copies", icon=":material/swap_horiz:"),
        st.Page("pages/roofline.py", title="Roofline", icon=":material/show_chart:"),
    ],
    "Runs": [
        st.Page("pages/upload.py", title="Upload", icon=":material/upload_file:"),
        st.Page("pages/runs.py", title="Catalogue", icon=":material/folder_open:"),
    ],
}

page = st.navigation(PAGES)
skipped = common.register_known_runs()
st.sidebar.markdown("### trtscope")
common.run_picker()
if skipped:
    with st.sidebar.expander(f"{len(skipped)} run folder(s) could not be read"):
        for folder, reason in skipped.items():
            st.caption(f"{Path(folder).name}: {reason}")
flash = st.session_state.pop("flash", None)
if flash:
    st.toast(flash, icon=":material/check_circle:")
page.run()
