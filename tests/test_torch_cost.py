"""Costs of PyTorch runs: modules.json records and emit_nvtx op-range texts."""

import json
import math

import pytest

from profiler.model.torch_cost import (aten_op_key, load_modules_json, module_costs, nvtx_op_cost, nvtx_op_costs,
                                       parse_nvtx_op)
from tests.conftest_model import TRANSFORMER, module_records, small_transformer


@pytest.fixture(scope="session")
def resnet50_records():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet50(weights=None).eval()
    return module_records(model, torch.randn(1, 3, 224, 224))


def test_resnet50_modules_match_published(resnet50_records):
    costs = module_costs(resnet50_records, precision="fp16")
    assert costs["counted"].all()
    assert costs["macs"].sum() == pytest.approx(4.1e9, rel=0.05)
    assert costs["params"].sum() == 25_557_032  # torchvision's count, BatchNorm included
    relu = costs[costs["name"] == "layer1.0.relu"]
    assert list(relu["call"]) == [0, 1, 2]  # one ReLU module called three times per block
    assert list(relu["flops"]) == [64 * 56 * 56, 64 * 56 * 56, 256 * 56 * 56]
    stem = costs.set_index("name").loc["conv1"]
    assert stem["macs"] == 64 * 112 * 112 * 3 * 49 and stem["tc_eligible"] == False  # noqa: E712


def test_mobilenet_v2_modules():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    costs = module_costs(module_records(model, torch.randn(1, 3, 224, 224)))
    assert costs["macs"].sum() == pytest.approx(0.30e9, rel=0.05)
    assert costs["params"].sum() == pytest.approx(3.5e6, rel=0.05)
    assert costs["findings"].str.contains("depthwise").sum() == 17


def test_transformer_modules_match_hand_count():
    torch = pytest.importorskip("torch")
    t = TRANSFORMER
    records = module_records(small_transformer(), torch.randn(t["batch"], t["seq"], t["d_model"]))
    costs = module_costs(records, precision="fp16")
    tokens, e, f = t["batch"] * t["seq"], t["d_model"], t["ffn"]
    per_layer = 4 * tokens * e * e + 2 * t["batch"] * t["seq"] * t["seq"] * e + 2 * tokens * e * f
    assert costs["counted"].all()
    assert costs["macs"].sum() == t["layers"] * per_layer


def test_hand_made_records(tmp_path):
    records = [
        {"name": "features.0", "type": "Conv2d", "input_shapes": [[8, 3, 32, 32]], "output_shapes": [[8, 16, 16, 16]],
         "dtype": "float16", "in_channels": 3, "out_channels": 16, "kernel_size": [3, 3], "stride": [2, 2],
         "padding": [1, 1], "dilation": [1, 1], "groups": 1, "bias": True},
        {"name": "head", "type": "Linear", "input_shapes": [[8, 512]], "output_shapes": [[8, 10]], "dtype": "float16",
         "in_features": 512, "out_features": 10, "bias": True},
        {"name": "attn", "type": "MultiheadAttention", "input_shapes": [[4, 20, 64]] * 3,
         "output_shapes": [[4, 20, 64]], "dtype": "float32", "embed_dim": 64, "num_heads": 8, "batch_first": True},
        {"name": "norm", "type": "LayerNorm", "input_shapes": [[4, 20, 64]], "output_shapes": [[4, 20, 64]],
         "dtype": "float16", "normalized_shape": [64], "weight_shape": [64]},
        {"name": "mystery", "type": "FancyBlock", "input_shapes": [[1, 2]], "output_shapes": [[1, 2]]},
    ]
    path = tmp_path / "modules.json"
    path.write_text(json.dumps(records))
    costs = module_costs(load_modules_json(path)).set_index("name")
    assert costs.loc["features.0", "macs"] == 8 * 16 * 16 * 16 * 3 * 9
    assert costs.loc["features.0", "bytes_read"] == (8 * 3 * 32 * 32 + 16 * 27 + 16) * 2
    assert costs.loc["head", "macs"] == 8 * 512 * 10 and costs.loc["head", "tc_eligible"] == False  # noqa: E712
    # 4 projections of 80 tokens x 64 x 64, plus Q K^T and scores x V (4 batches, 8 heads, 20 x 20, d 8)
    assert costs.loc["attn", "macs"] == 4 * 80 * 64 * 64 + 2 * 4 * 8 * 20 * 20 * 8
    assert costs.loc["attn", "bytes_read"] > 0 and costs.loc["attn", "intensity"] > 0
    assert costs.loc["norm", "flops"] == 7 * 4 * 20 * 64
    assert not costs.loc["mystery", "counted"] and math.isnan(costs.loc["mystery", "flops"])
    assert "FancyBlock" in costs.loc["mystery", "findings"]
    fp32 = module_costs(records, precision="fp32").set_index("name")
    assert fp32.loc["features.0", "bytes_read"] == 2 * costs.loc["features.0", "bytes_read"]


# --- emit_nvtx op ranges -------------------------------------------------------------------------

CONV = "aten::conv2d, op_id = 12, sizes = [[8, 3, 224, 224], [64, 3, 7, 7], [], [1, 1], [3, 3], [1, 1], []]"
ADDMM = "aten::addmm, seq = 4, op_id = 90, sizes = [[1000], [8, 2048], [2048, 1000], [], []], input_op_ids = [(88, 0)]"


def test_parse_nvtx_texts():
    op, sizes = parse_nvtx_op(CONV)
    assert op == "aten::conv2d" and sizes[0] == [8, 3, 224, 224] and sizes[2] == []
    op, sizes = parse_nvtx_op(ADDMM)
    assert op == "aten::addmm" and sizes == [[1000], [8, 2048], [2048, 1000], [], []]
    assert parse_nvtx_op("layer1.0.conv1") is None
    assert parse_nvtx_op("aten::add, sizes = [[1, 2], [") is None
    assert aten_op_key("aten::_softmax") == "softmax" and aten_op_key("aten::relu_") == "relu"


def test_nvtx_conv_and_addmm():
    conv, tc = nvtx_op_cost(CONV)
    # stride 1, padding 3, dilation 1 recorded as values: 224 -> 224
    assert conv.output_shape == (8, 64, 224, 224)
    assert conv.macs == 8 * 64 * 224 * 224 * 3 * 49 and tc is False
    addmm, tc = nvtx_op_cost(ADDMM)
    assert addmm.macs == 8 * 2048 * 1000 and addmm.flops == 2 * addmm.macs + 8000 and tc is True
    bare = nvtx_op_cost("aten::conv2d, sizes = [[1, 64, 56, 56], [64, 64, 3, 3], [64], [], [], [], []]")[0]
    assert bare.macs == 64 * 56 * 56 * 64 * 9 and "assumed" in bare.note


def test_nvtx_other_ops():
    linear, _ = nvtx_op_cost("aten::linear, sizes = [[4, 16, 256], [1024, 256], [1024]]")
    assert linear.macs == 64 * 256 * 1024 and linear.params == 1024 * 256 + 1024
    assert nvtx_op_cost("aten::bmm, sizes = [[12, 64, 32], [12, 32, 64]]")[0].macs == 12 * 64 * 64 * 32
    assert nvtx_op_cost("aten::matmul, sizes = [[2, 8, 10, 16], [16, 4]]")[0].macs == 16 * 10 * 4 * 16
    assert nvtx_op_cost("aten::baddbmm, sizes = [[1], [2, 3, 4], [2, 4, 5]]")[0].macs == 2 * 3 * 5 * 4
    ln, _ = nvtx_op_cost("aten::layer_norm, sizes = [[2, 10, 768], [], [768], [768], [], []]")
    assert ln.flops == 7 * 2 * 10 * 768
    bn, _ = nvtx_op_cost("aten::batch_norm, sizes = [[1, 64, 8, 8], [64], [64], [64], [64], [], [], [], []]")
    assert bn.flops == 2 * 64 * 64
    assert nvtx_op_cost("aten::_softmax, sizes = [[2, 12, 128, 128], [], []]")[0].flops == 5 * 2 * 12 * 128 * 128
    sdpa, tc = nvtx_op_cost("aten::scaled_dot_product_attention, sizes = [[2, 12, 128, 64], [2, 12, 128, 64], "
                            "[2, 12, 128, 64], [], [], [], []]")
    assert sdpa.macs == 2 * 12 * 128 * 128 * 128 and tc is True
    flash, _ = nvtx_op_cost("aten::_flash_attention_forward, sizes = [[2, 128, 12, 64], [2, 128, 12, 64], "
                            "[2, 128, 12, 64], [], [], [], [], [], []]")
    assert flash.macs == sdpa.macs  # (B, L, H, D) layout
    add, _ = nvtx_op_cost("aten::add_, sizes = [[8, 256, 56, 56], [8, 256, 56, 56], []]")
    assert add.flops == 8 * 256 * 56 * 56
    assert nvtx_op_cost("aten::gelu, sizes = [[4, 100], []]")[0].flops == 5 * 400
    assert nvtx_op_cost("aten::view, sizes = [[4, 100], []]")[0].bytes == 0
    copy, _ = nvtx_op_cost("aten::copy_, sizes = [[4, 100], [4, 100], []]", precision="fp32")
    assert copy.bytes_read == copy.bytes_written == 1600


def test_nvtx_op_costs_frame():
    texts = [CONV, ADDMM, ADDMM, "aten::frobnicate, sizes = [[1, 2]]", "not an op range"]
    costs = nvtx_op_costs(texts)
    assert list(costs["name"]) == [CONV, ADDMM, "aten::frobnicate, sizes = [[1, 2]]", "not an op range"]
    assert list(costs["counted"]) == [True, True, False, False]
    assert "no cost formula" in costs.loc[2, "findings"]
    assert costs.loc[1, "op_type"] == "aten::addmm"
