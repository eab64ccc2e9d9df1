"""The Roofline page (Streamlit AppTest): every bundled run, and the ONNX upload path (good and bad files)."""

from __future__ import annotations

import io

import pytest

from tests.test_app_pages import app_env, problems, start  # noqa: F401  (fixture and helpers reused)

PAGE = "pages/roofline.py"


def tiny_onnx() -> bytes:
    """Conv(8->16, 3x3) + Relu + MatMul-free graph with a custom op: small, valid, one unknown op."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((16, 8, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="/relu/Relu"),
             helper.make_node("Mystery", ["r"], ["y"], name="/mystery", domain="my.custom")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, 32])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.custom", 1)])
    buf = io.BytesIO()
    onnx.save(model, buf)
    return buf.getvalue()


def open_page(run_id: str | None):
    at = start(run_id)
    if run_id:
        at.session_state["run_id"] = run_id
    at.switch_page(PAGE)
    at.run()
    return at


def test_roofline_page_on_every_bundled_run(app_env, sample_run_dirs):
    at = start()
    for d in sample_run_dirs:
        at.session_state["run_id"] = f"bundled-{d.name}"
        at.switch_page(PAGE)
        at.run()
        assert not problems(at), (d.name, problems(at))
        assert at.title[0].value == "Roofline"
        assert at.get("plotly_chart"), (d.name, "the roofline chart is drawn")
        assert any("Furthest below their roof" in m.value for m in at.markdown), d.name


def test_resnet50_fp16_page_names_the_worst_layers(app_env, sample_run_dirs):
    if "resnet50_fp16_b8" not in {d.name for d in sample_run_dirs}:
        pytest.skip("bundled ResNet-50 FP16 run not present")
    at = open_page("bundled-resnet50_fp16_b8")
    assert not problems(at), problems(at)
    sentence = next(m.value for m in at.markdown if "Furthest below their roof" in m.value)
    assert "`layer4." in sentence and "BatchNorm2d" in sentence
    assert at.dataframe and len(at.dataframe[0].value) >= 150


def test_measured_ceilings_toggle(app_env, sample_run_dirs):
    if "resnet50_fp16_b8" not in {d.name for d in sample_run_dirs}:
        pytest.skip("bundled ResNet-50 FP16 run not present")
    at = open_page("bundled-resnet50_fp16_b8")
    assert any("(datasheet ceilings)" in c.value and "989 TFLOP/s" in c.value for c in at.caption)
    at.toggle(key="roofline_measured").set_value(True).run()
    assert not problems(at), problems(at)
    assert any("(measured ceilings)" in c.value and "748 TFLOP/s" in c.value and "2.99 TB/s" in c.value
               for c in at.caption)
    assert any("above the DRAM roof" in c.value for c in at.caption)  # the L2-resident 1x1 convolutions


def test_onnx_upload_good_and_bad(app_env, sample_run_dirs):
    at = open_page(f"bundled-{sample_run_dirs[0].name}")
    assert not problems(at), problems(at)
    at.file_uploader(key="roofline_onnx").set_value(("tiny.onnx", tiny_onnx(), "application/octet-stream"))
    at.run()
    assert not problems(at), problems(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Nodes"] == "3"
    assert float(labels["GFLOPs"]) == pytest.approx(2 * 16 * 32 * 32 * 8 * 9 / 1e9 + 16 * 32 * 32 / 1e9, abs=1e-3)
    assert any("Mystery" in w.value for w in at.warning), "unknown ops are listed"
    nodes = at.dataframe[-1].value
    assert list(nodes["node"]) == ["/conv/Conv", "/relu/Relu", "/mystery"]
    assert nodes.loc[0, "Tensor Cores"] == "eligible" and nodes.loc[0, "predicted µs"] > 0

    at.selectbox(key="roofline_gpu").set_value("T4")
    at.selectbox(key="roofline_precision").set_value("int8")
    at.run()
    assert not problems(at), problems(at)

    at.file_uploader(key="roofline_onnx").set_value(("notes.onnx", b"this is not a model\n" * 10, "text/plain"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and at.error[0].value.startswith("notes.onnx: ")
    assert "\n" not in at.error[0].value and "Traceback" not in at.error[0].value
