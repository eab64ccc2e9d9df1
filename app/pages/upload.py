"""Upload: an nsys export (.sqlite, .sqlite.xz/.zst/.gz, or .nsys-rep where nsys is installed) becomes a run.

The file is written to the store's incoming/ folder, validated by profiler.store (open + summarise) and only
then registered; a bad file gets its one-line reason here and nothing stored changes. The size limit is
Streamlit's server.maxUploadSize, set in streamlit_config.toml (read through .streamlit/config.toml).
"""

from __future__ import annotations

import os
import streamlit as st

import common
from profiler.errors import TraceError

TRACE_TYPES = ["sqlite", "xz", "zst", "gz", "nsys-rep", "qdrep"]

store = common.get_store()
max_mb = int(st.get_option("server.maxUploadSize"))
st.title("Upload")
tab_trace, tab_model = st.tabs(["Nsight Systems trace", "ONNX model"])

with tab_trace:
    st.markdown(
        "Add an **Nsight Systems export** as a run: `nsys export --type sqlite report.nsys-rep` gives a `.sqlite` "
        "file (compress it with xz, zstd or gzip to upload less); `.nsys-rep` reports work where `nsys` is "
        f"installed on this server. Up to **{max_mb:,} MB** per file.")
    upload = st.file_uploader("Trace file", type=TRACE_TYPES, key="upload_trace",
                              help=f"Limit {max_mb} MB (server.maxUploadSize in streamlit_config.toml)")
    default_name = upload.name.split(".")[0] if upload is not None else ""
    name = st.text_input("Run name", value=default_name, key=f"upload_name_{default_name}",
                         placeholder="e.g. resnet50 fp16 b32")
    if st.button("Add to the catalogue", type="primary", disabled=upload is None, key="upload_import"):
        incoming = store.new_incoming_path(upload.name)
        try:
            if upload.size > max_mb * 1024 * 1024:
                raise TraceError(f"{upload.name}: {upload.size / 1e6:.0f} MB is over the {max_mb} MB upload limit")
            tmp = incoming.with_name(incoming.name + ".part")
            with open(tmp, "wb") as out:
                out.write(upload.getbuffer())
            os.replace(tmp, incoming)
            with st.spinner("Checking and summarising the trace…"):
                run = store.import_trace(incoming, name=name.strip() or default_name, source="uploaded",
                                         metadata={"uploaded_file": upload.name, "uploaded_bytes": int(upload.size)},
                                         move=True)
        except TraceError as exc:
            st.error(f"Not added: {exc}", icon=":material/error:")
        except OSError as exc:
            st.error(f"Not added: could not store the file ({exc.strerror or exc}).", icon=":material/error:")
        else:
            warnings = run.summary.get("trace", {}).get("warnings") or []
            st.session_state["flash"] = f"Added “{run.name}” ({len(run.summary.get('kernels', []))} kernel names)."
            if warnings:
                st.session_state["flash"] += f" {len(warnings)} note(s) about the export are on the Overview."
            st.session_state[common.PENDING_RUN_KEY] = run.id
            st.session_state[common.RUN_KEY] = run.id
            st.switch_page("pages/overview.py")
        finally:
            store.discard_incoming(incoming)

with tab_model:
    st.markdown("An **ONNX model** is analysed without running it (per-node FLOPs and bytes, Tensor-Core "
                "eligibility, predicted times on a GPU of your choice) on the Roofline page.")
    st.page_link("pages/roofline.py", label="Analyse an ONNX model on the Roofline page", icon=":material/show_chart:")
