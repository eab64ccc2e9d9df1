"""Roofline: placeholder. The model-analysis engineer replaces this page (measured layers on the GPU's roofline,
ONNX model analysis); until then it only keeps the page's slot in the navigation."""

from __future__ import annotations

import streamlit as st

st.title("Roofline")
st.info("The roofline view (each layer's measured time against the GPU's compute and memory ceilings, and the "
        "analysis of uploaded ONNX models) arrives with its issue.", icon=":material/construction:")
