"""Static ONNX analysis: published totals on real exported models, per-op formulas on a
hand-built graph, findings, and bad models that must fail with a clear ModelError."""

import io
import math
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from profiler.errors import ModelError
from profiler.model import onnx_load
from profiler.model.onnx_cost import costs_by_op_type, onnx_node_costs, onnx_totals
from tests.conftest_model import TRANSFORMER, dynamic_batch_onnx, torchvision_onnx, transformer_onnx


@pytest.fixture(scope="session")
def resnet50_path():
    return torchvision_onnx("resnet50")


@pytest.fixture(scope="session")
def mobilenet_v2_path():
    return torchvision_onnx("mobilenet_v2")


@pytest.fixture(scope="session")
def resnet50_costs(resnet50_path):
    return onnx_node_costs(resnet50_path, "fp16")


# --- published totals --------------------------------------------------------------------------

def test_resnet50_totals_match_published(resnet50_costs):
    totals = onnx_totals(resnet50_costs)
    assert totals["macs"] == pytest.approx(4.1e9, rel=0.05)
    assert totals["flops"] == pytest.approx(2 * totals["macs"], rel=0.01)  # 1 MAC = 2 FLOPs (+ adds)
    assert totals["params"] == pytest.approx(25.6e6, rel=0.05)
    assert totals["unknown_ops"] == {}
    assert totals["counted_nodes"] == totals["nodes"]


def test_mobilenet_v2_totals_match_published(mobilenet_v2_path):
    totals = onnx_totals(onnx_node_costs(mobilenet_v2_path))
    assert totals["macs"] == pytest.approx(0.30e9, rel=0.05)
    assert totals["params"] == pytest.approx(3.5e6, rel=0.05)
    assert totals["unknown_ops"] == {}


def test_small_transformer_matches_hand_count():
    t = TRANSFORMER
    tokens, e, f = t["batch"] * t["seq"], t["d_model"], t["ffn"]
    per_layer = (4 * tokens * e * e  # Q, K, V and output projections
                 + 2 * t["batch"] * t["seq"] * t["seq"] * e  # Q K^T and scores x V over all heads
                 + 2 * tokens * e * f)  # feed-forward
    costs = onnx_node_costs(transformer_onnx())
    totals = onnx_totals(costs)
    assert totals["macs"] == t["layers"] * per_layer
    assert totals["unknown_ops"] == {}
    softmax = costs[costs["op_type"] == "Softmax"]
    assert len(softmax) == t["layers"]
    assert softmax["findings"].str.contains("attention pattern").all()
    attn_matmuls = costs[costs["findings"].str.contains("activation x activation MatMul")]
    assert len(attn_matmuls) == 2 * t["layers"]
    assert set(costs.loc[costs["op_type"] == "LayerNormalization", "flops"]) == {7 * tokens * e}


def test_resnet50_per_node_formulas_and_findings(resnet50_costs):
    rows = resnet50_costs.set_index("name")
    stem = rows.loc["/conv1/Conv"]
    assert stem["macs"] == 64 * 112 * 112 * 3 * 49
    assert stem["tc_eligible"] is False or stem["tc_eligible"] == False  # noqa: E712  (Cin = 3)
    assert "Cin/g=3" in stem["findings"]
    assert rows.loc["/fc/Gemm", "macs"] == 2048 * 1000
    assert rows.loc["/fc/Gemm", "params"] == 2048 * 1000 + 1000
    convs = resnet50_costs[resnet50_costs["op_type"] == "Conv"]
    assert len(convs) == 53 and convs["counted"].all() and (convs["flops"] > 0).all()
    assert convs["tc_eligible"].sum() == 52
    pointwise = convs[convs["findings"].str.contains("1x1")]
    assert len(pointwise) == 36  # 3 per bottleneck x 16 + 4 downsample convs = 52; 3x3 ones excluded
    adds = resnet50_costs[resnet50_costs["op_type"] == "Add"]
    assert len(adds) == 16 and adds["findings"].str.contains("shortcut").all()
    by_op = costs_by_op_type(resnet50_costs)
    assert by_op.iloc[0]["op_type"] == "Conv" and by_op.iloc[0]["flops_share"] > 0.99


def test_mobilenet_v2_depthwise_findings(mobilenet_v2_path):
    costs = onnx_node_costs(mobilenet_v2_path)
    depthwise = costs[costs["findings"].str.contains("depthwise")]
    assert len(depthwise) == 17
    assert (depthwise["tc_eligible"] == False).all()  # noqa: E712
    assert depthwise["intensity"].max() < 10  # FLOP/B at FP16: memory-bound everywhere


def test_precision_sets_bytes(resnet50_path, resnet50_costs):
    fp32 = onnx_node_costs(resnet50_path, "fp32").set_index("name")
    int8 = onnx_node_costs(resnet50_path, "int8").set_index("name")
    fp16 = resnet50_costs.set_index("name")
    conv = "/layer1/layer1.0/conv2/Conv"
    assert fp32.loc[conv, "bytes_read"] == 2 * fp16.loc[conv, "bytes_read"]
    assert int8.loc[conv, "bytes_written"] == fp16.loc[conv, "bytes_written"] / 2
    assert fp32.loc[conv, "flops"] == fp16.loc[conv, "flops"]
    assert "not a multiple of 16" in int8.loc["/conv1/Conv", "findings"]


# --- a hand-built graph covering the op families ---------------------------------------------------

def _const(name, shape, dtype=np.float32, value=None):
    arr = np.asarray(value, dtype=dtype) if value is not None else np.random.rand(*shape).astype(dtype)
    return numpy_helper.from_array(arr, name)


@pytest.fixture(scope="module")
def op_zoo():
    node = helper.make_node
    nodes = [
        node("BatchNormalization", ["x", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn"),
        node("Conv", ["bn", "w_conv"], ["conv"], name="conv_g", group=2, dilations=[2, 2], strides=[2, 2],
             pads=[2, 2, 2, 2]),
        node("Relu", ["conv"], ["relu"], name="relu"),
        node("Add", ["relu", "conv"], ["add"], name="shortcut"),
        node("ConvTranspose", ["add", "w_deconv"], ["deconv"], name="deconv", strides=[2, 2]),
        node("Resize", ["deconv", "", "scales"], ["up"], name="resize", mode="linear"),
        node("MaxPool", ["up"], ["pool"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
        node("Concat", ["pool", "deconv"], ["cat"], name="concat", axis=1),
        node("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
        node("Transpose", ["cat"], ["nhwc"], name="transpose", perm=[0, 2, 3, 1]),
        node("Reshape", ["nhwc", "shape"], ["tokens"], name="reshape"),
        node("MatMul", ["tokens", "w_mm"], ["mm"], name="matmul"),
        node("LayerNormalization", ["mm", "ln_s", "ln_b"], ["ln"], name="layernorm", axis=-1),
        node("Softmax", ["ln"], ["sm"], name="softmax", axis=-1),
        node("ReduceMean", ["sm"], ["mean"], name="reducemean", axes=[1], keepdims=1),
        node("Flatten", ["mean"], ["flat"], name="flatten"),
        node("Gemm", ["flat", "w_fc", "b_fc"], ["fc"], name="gemm", transB=1),
        node("Einsum", ["ln", "ln"], ["gram"], name="einsum", equation="bik,bjk->bij"),
        node("Foo", ["x"], ["foo"], name="custom", domain="com.example"),
    ]
    inits = [
        _const("bn_s", (8,)), _const("bn_b", (8,)), _const("bn_m", (8,)), _const("bn_v", (8,)),
        _const("w_conv", (8, 4, 3, 3)), _const("w_deconv", (8, 4, 2, 2)),
        _const("scales", None, value=[1, 1, 2, 2]), _const("shape", None, np.int64, [1, 256, 8]),
        _const("w_mm", (8, 16)), _const("ln_s", (16,)), _const("ln_b", (16,)),
        _const("w_fc", (10, 16)), _const("b_fc", (10,)),
    ]
    graph = helper.make_graph(
        nodes, "zoo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16, 16])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in
         (("fc", [1, 10]), ("gram", [1, 256, 256]), ("foo", [1, 8, 16, 16]), ("gap", [1, 8, 1, 1]))],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    model.ir_version = 8
    return onnx_node_costs(model, "fp16").set_index("name")


def test_zoo_hand_counts(op_zoo):
    r = op_zoo
    assert r.loc["bn", "flops"] == 2 * 8 * 256 and r.loc["bn", "params"] == 16
    # grouped, dilated, strided conv: 16 -> 8; MACs = Cout * 8 * 8 * (Cin / groups) * 9
    assert r.loc["conv_g", "output_shapes"] == [(1, 8, 8, 8)]
    assert r.loc["conv_g", "macs"] == 8 * 64 * 4 * 9
    assert "grouped conv" in r.loc["conv_g", "findings"] and "dilated" in r.loc["conv_g", "findings"]
    assert "shortcut" in r.loc["shortcut", "findings"]
    assert r.loc["deconv", "macs"] == 8 * 8 * 8 * 4 * 4  # input elements x Cout/g x K
    assert r.loc["deconv", "output_shapes"] == [(1, 4, 16, 16)]
    assert r.loc["resize", "flops"] == 7 * 4 * 32 * 32
    assert r.loc["resize", "bytes_read"] == 4 * 16 * 16 * 2  # scales are not data
    assert r.loc["maxpool", "flops"] == 4 * 16 * 16 * 4
    assert r.loc["concat", "flops"] == 0
    assert r.loc["concat", "bytes_read"] == r.loc["concat", "bytes_written"] == 8 * 256 * 2
    assert "Concat" in r.loc["concat", "findings"]
    assert "layout change" in r.loc["transpose", "findings"]
    assert r.loc["reshape", "bytes_read"] == 0 and r.loc["reshape", "flops"] == 0
    assert r.loc["matmul", "macs"] == 256 * 16 * 8 and r.loc["matmul", "params"] == 128
    assert r.loc["layernorm", "flops"] == 7 * 256 * 16 and r.loc["layernorm", "params"] == 32
    assert r.loc["softmax", "flops"] == 5 * 256 * 16
    assert r.loc["reducemean", "flops"] == 256 * 16 + 16
    assert r.loc["gemm", "macs"] == 160 and r.loc["gemm", "flops"] == 330
    assert r.loc["einsum", "macs"] == 256 * 256 * 16
    assert r.loc["gap", "flops"] == 8 * 256 + 8
    assert r.loc["gemm", "tc_eligible"] == False  # noqa: E712  K = 16, N = 10
    assert r.loc["matmul", "tc_eligible"] == True  # noqa: E712


def test_unknown_ops_are_listed_not_zero(op_zoo):
    custom = op_zoo.loc["custom"]
    assert not custom["counted"] and math.isnan(custom["flops"])
    assert "no cost formula" in custom["findings"]
    assert "not supported natively by TensorRT" in custom["findings"]
    totals = onnx_totals(op_zoo.reset_index())
    assert totals["unknown_ops"] == {"Foo": 1}
    assert totals["counted_nodes"] == totals["nodes"] - 1


# --- inputs of every kind, dynamic shapes ---------------------------------------------------------

def test_loads_from_bytes_filelike_and_proto(resnet50_path):
    data = resnet50_path.read_bytes()
    a = onnx_totals(onnx_node_costs(data))
    b = onnx_totals(onnx_node_costs(io.BytesIO(data)))
    c = onnx_totals(onnx_node_costs(onnx.load(str(resnet50_path))))
    assert a["macs"] == b["macs"] == c["macs"]


def test_dynamic_shapes_need_values():
    path = dynamic_batch_onnx()
    with pytest.raises(ModelError, match="dynamic") as err:
        onnx_node_costs(path)
    assert "input_shapes" in str(err.value) and "\n" not in str(err.value)
    costs = onnx_node_costs(path, input_shapes={"x": [4, 3, 32, 32]})
    assert costs.loc[costs["op_type"] == "Conv", "macs"].iloc[0] == 4 * 8 * 32 * 32 * 3 * 9
    with pytest.raises(ModelError, match="not model inputs"):
        onnx_node_costs(path, input_shapes={"nope": [1]})


# --- bad models ------------------------------------------------------------------------------------

def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def test_not_onnx_empty_missing_and_directory(tmp_path):
    junk = tmp_path / "model.onnx"
    junk.write_text("this is not a model, just some text\n" * 20)
    with pytest.raises(ModelError) as err:
        onnx_node_costs(junk)
    assert "ONNX" in _one_line(err)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        onnx_node_costs(empty)
    with pytest.raises(ModelError, match="no such model file"):
        onnx_node_costs(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="not a file"):
        onnx_node_costs(tmp_path)
    with pytest.raises(ModelError):
        onnx_node_costs(os.urandom(4096))


def test_truncated_models(tmp_path, resnet50_path):
    data = resnet50_path.read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 100):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelError) as err:
            onnx_node_costs(path)
        _one_line(err)


def test_two_gigabytes_or_more_is_refused_before_reading(tmp_path):
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:
        f.truncate(2**31 + 16)  # sparse: no disk space used, never read
    with pytest.raises(ModelError, match="2 GB") as err:
        onnx_node_costs(big)
    _one_line(err)


def test_size_limit_is_configurable(monkeypatch, resnet50_path):
    monkeypatch.setattr(onnx_load, "MAX_MODEL_BYTES", 1_000_000)
    with pytest.raises(ModelError, match="limit"):
        onnx_node_costs(resnet50_path)
    with pytest.raises(ModelError, match="limit"):
        onnx_node_costs(resnet50_path, max_bytes=10)


def _external_model(folder, location="weights.bin"):
    w = numpy_helper.from_array(np.random.rand(16, 8, 3, 3).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])], "ext",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "model.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return path


def _relocate(path, location):
    """Point the model's external tensor at another location (written as-is, nothing loaded)."""
    model = onnx.load(str(path), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    path.write_bytes(model.SerializeToString())


def test_external_data_inside_folder_is_fine(tmp_path):
    costs = onnx_node_costs(_external_model(tmp_path))
    assert costs.loc[0, "macs"] == 16 * 64 * 8 * 9 and costs.loc[0, "params"] == 16 * 8 * 9


@pytest.mark.parametrize("location, message", [
    ("../outside.bin", "leaves the model's folder"),
    ("sub/../../outside.bin", "leaves the model's folder"),
    ("/etc/passwd", "absolute"),
    ("missing.bin", "not found"),
])
def test_external_data_outside_the_folder_is_refused(tmp_path, location, message):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"\0" * 4608)
    path = _external_model(folder)
    _relocate(path, location)
    with pytest.raises(ModelError, match=message) as err:
        onnx_node_costs(path)
    _one_line(err)


def test_external_data_symlink_out_of_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    path = _external_model(folder)
    (tmp_path / "secret.bin").write_bytes((folder / "weights.bin").read_bytes())
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    _relocate(path, "link.bin")
    with pytest.raises(ModelError, match="outside the model's folder"):
        onnx_node_costs(path)


def test_external_data_shorter_than_declared_is_refused(tmp_path):
    path = _external_model(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 100)
    with pytest.raises(ModelError, match="shorter than declared"):
        onnx_node_costs(path)


def test_uploaded_bytes_with_unsafe_external_reference_are_refused(tmp_path):
    path = _external_model(tmp_path)
    _relocate(path, "../../etc/shadow")
    with pytest.raises(ModelError, match="leaves the model's folder"):
        onnx_node_costs(path.read_bytes())
