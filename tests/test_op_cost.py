"""Per-op formulas on hand-computed cases (1 MAC = 2 FLOPs; bytes = each tensor once)."""

import math

import pytest

from profiler.model import op_cost as oc


def test_conv_resnet_stem_fp16():
    # 7x7/2 conv, pad 3: 224 -> 112; MACs = Cout * Hout * Wout * Cin * K * K
    c = oc.conv((1, 3, 224, 224), (64, 3, 7, 7), strides=[2, 2], pads=[3, 3, 3, 3], bias=False, dtype_bytes=2)
    assert c.output_shape == (1, 64, 112, 112)
    assert c.macs == 64 * 112 * 112 * 3 * 49 == 118_013_952
    assert c.flops == 2 * c.macs
    assert c.params == 64 * 3 * 49
    assert c.bytes_read == (3 * 224 * 224 + 9408) * 2
    assert c.bytes_written == 64 * 112 * 112 * 2
    assert c.intensity == pytest.approx(c.flops / (c.bytes_read + c.bytes_written))


def test_conv_bias_adds_one_flop_per_output():
    c = oc.conv((2, 8, 10, 10), (16, 8, 3, 3), pads=[1, 1], bias=True, dtype_bytes=4)
    out = 2 * 16 * 10 * 10
    assert c.macs == out * 8 * 9
    assert c.flops == 2 * c.macs + out
    assert c.params == 16 * 8 * 9 + 16
    assert c.bytes_read == (2 * 8 * 100 + c.params) * 4


def test_depthwise_grouped_1x1_and_dilated_conv():
    dw = oc.conv((1, 32, 112, 112), (32, 1, 3, 3), pads=[1, 1, 1, 1], groups=32, bias=False)
    assert dw.output_shape == (1, 32, 112, 112)
    assert dw.macs == 32 * 112 * 112 * 9
    grouped = oc.conv((1, 64, 56, 56), (128, 16, 3, 3), pads=[1, 1], groups=4, bias=False)
    assert grouped.macs == 128 * 56 * 56 * 16 * 9
    pointwise = oc.conv((2, 256, 14, 14), (512, 256, 1, 1), strides=[2, 2], bias=False)
    assert pointwise.output_shape == (2, 512, 7, 7)
    assert pointwise.macs == 2 * 512 * 49 * 256
    dilated = oc.conv((1, 16, 32, 32), (16, 16, 3, 3), pads=[2, 2], dilations=[2, 2], bias=False)
    assert dilated.output_shape == (1, 16, 32, 32)
    assert dilated.macs == 16 * 32 * 32 * 16 * 9
    # depthwise 3x3 has far lower intensity than a dense 3x3 on the same tensor
    dense = oc.conv((1, 32, 112, 112), (32, 32, 3, 3), pads=[1, 1], bias=False)
    assert dw.intensity < dense.intensity / 10


def test_conv_output_spatial_asymmetric_pads_and_3d():
    assert oc.conv_output_spatial((7, 7), (3, 3), pads=[0, 0, 1, 1]) == (6, 6)  # begin 0, end 1
    assert oc.conv_output_spatial((7, 7), (3, 3), pads=[1, 1]) == (7, 7)  # torch-style symmetric
    assert oc.conv_output_spatial((7, 7), (3, 3), strides=[2, 2], pads=[0, 0, 1, 1]) == (3, 3)
    c = oc.conv((1, 4, 8, 16, 16), (8, 4, 3, 3, 3), pads=[1, 1, 1], bias=False)
    assert c.output_shape == (1, 8, 8, 16, 16)
    assert c.macs == 8 * 8 * 16 * 16 * 4 * 27


def test_conv_transpose():
    # stride 2, k 4, pad 1: 16 -> 32; every input element meets a K x K window for Cout/g channels
    c = oc.conv_transpose((1, 64, 16, 16), (64, 32, 4, 4), strides=[2, 2], pads=[1, 1, 1, 1], bias=True)
    assert c.output_shape == (1, 32, 32, 32)
    assert c.macs == 64 * 16 * 16 * 32 * 16
    assert c.flops == 2 * c.macs + 32 * 32 * 32
    assert c.params == 64 * 32 * 16 + 32


def test_matmul_batched_broadcast_and_gemm():
    m = oc.matmul((2, 8, 128, 64), (64, 32), b_is_weight=True, dtype_bytes=2)
    assert m.output_shape == (2, 8, 128, 32)
    assert m.macs == 16 * 128 * 32 * 64
    assert m.params == 64 * 32
    assert m.bytes_read == (2 * 8 * 128 * 64 + 64 * 32) * 2
    bmm = oc.matmul((4, 1, 10, 20), (1, 3, 20, 5))
    assert bmm.output_shape == (4, 3, 10, 5)
    assert bmm.macs == 12 * 10 * 5 * 20
    fc = oc.gemm((8, 2048), (1000, 2048), (1000,), trans_b=True)
    assert fc.macs == 8 * 2048 * 1000
    assert fc.flops == 2 * fc.macs + 8 * 1000
    assert fc.params == 2048 * 1000 + 1000
    vec = oc.matmul((64,), (64, 10))
    assert vec.output_shape == (10,) and vec.macs == 640
    with pytest.raises(ValueError):
        oc.matmul((2, 3), (4, 5))


def test_attention_4d_3d_and_causal():
    a = oc.attention((2, 8, 128, 64), (2, 8, 128, 64), (2, 8, 128, 64), dtype_bytes=2)
    scores = 2 * 8 * 128 * 128
    assert a.macs == scores * (64 + 64)
    assert a.flops == 2 * a.macs + 6 * scores
    assert a.bytes_read == 3 * 2 * 8 * 128 * 64 * 2  # fused: Q, K, V read once
    assert a.bytes_written == 2 * 8 * 128 * 64 * 2
    a3 = oc.attention((2, 128, 512), (2, 128, 512), (2, 128, 512), num_heads=8)
    assert a3.macs == a.macs and a3.output_shape == (2, 128, 512)
    causal = oc.attention((2, 8, 128, 64), (2, 8, 128, 64), (2, 8, 128, 64), causal=True)
    assert causal.macs == a.macs / 2
    unfused = oc.attention((2, 8, 128, 64), (2, 8, 128, 64), (2, 8, 128, 64), fused=False)
    assert unfused.bytes > a.bytes


def test_normalizations():
    bn = oc.normalization((1, 64, 8, 8), "batch", dtype_bytes=2)
    assert bn.flops == 2 * 64 * 64  # folded scale and shift
    assert bn.params == 128  # gamma, beta; running stats are buffers
    assert bn.bytes_read == (64 * 64 + 4 * 64) * 2
    ln = oc.normalization((4, 10, 512), "layer", normalized_numel=512)
    assert ln.flops == 7 * 4 * 10 * 512
    assert ln.params == 1024
    gn = oc.normalization((2, 32, 16, 16), "group", channels=32)
    assert gn.flops == 7 * 2 * 32 * 256 and gn.params == 64
    rms = oc.normalization((4, 10, 512), "rms", normalized_numel=512)
    assert rms.flops == 4 * 4 * 10 * 512 and rms.params == 512
    with pytest.raises(ValueError):
        oc.normalization((1, 2), "nope")


def test_activations_and_elementwise():
    relu = oc.activation("Relu", (1, 64, 56, 56), dtype_bytes=2)
    assert relu.flops == 64 * 56 * 56
    assert relu.bytes_read == relu.bytes_written == 64 * 56 * 56 * 2
    assert relu.intensity == pytest.approx(0.25)
    assert oc.activation("gelu", (10,)).flops == 50
    assert oc.activation("HardSwish", (10,)).flops == 50
    add = oc.binary("Add", (2, 3, 4), [(2, 3, 4), (4,)], dtype_bytes=2)
    assert add.flops == 24
    assert add.bytes_read == (24 + 4) * 2 and add.bytes_written == 48
    total = oc.binary("Sum", (5,), [(5,), (5,), (5,)])
    assert total.flops == 10
    with pytest.raises(KeyError):
        oc.activation("frobnicate", (3,))


def test_pooling_softmax_reduce_resize():
    mp = oc.pool((1, 64, 112, 112), (1, 64, 56, 56), (3, 3), kind="max")
    assert mp.flops == 64 * 56 * 56 * 9
    ap = oc.pool((1, 64, 112, 112), (1, 64, 56, 56), (3, 3), kind="avg")
    assert ap.flops == mp.flops + 64 * 56 * 56
    gap = oc.global_pool((1, 2048, 7, 7), kind="avg")
    assert gap.output_shape == (1, 2048, 1, 1) and gap.flops == 2048 * 49 + 2048
    assert oc.softmax((2, 10)).flops == 100
    assert oc.softmax((2, 10), log=True).flops == 120
    mean = oc.reduce((2, 3, 4), (2, 1, 4), kind="mean")
    assert mean.flops == 24 + 8
    assert oc.reduce((2, 3, 4), (2, 1, 4), kind="sumsquare").flops == 48
    up = oc.resize((1, 3, 8, 8), (1, 3, 16, 16), mode="linear")
    assert up.flops == 7 * 3 * 256  # bilinear: 4 weighted taps
    assert oc.resize((1, 3, 8, 8), (1, 3, 16, 16), mode="nearest").flops == 0


def test_data_movement_view_and_recurrent():
    cat = oc.data_movement(100 + 50, 150, dtype_bytes=2)
    assert cat.flops == 0 and cat.bytes_read == 300 and cat.bytes_written == 300
    assert math.isnan(oc.view((1, 2)).intensity)
    lstm = oc.recurrent("lstm", seq_len=10, batch=2, input_size=32, hidden=64)
    assert lstm.macs == 10 * 2 * 4 * 64 * (32 + 64)


def test_tensor_core_alignment():
    assert oc.conv_tensor_core_eligible(64, 128, 1, "fp16") == (True, "")
    ok, why = oc.conv_tensor_core_eligible(3, 64, 1, "fp16")
    assert not ok and "Cin/g=3" in why
    ok, why = oc.conv_tensor_core_eligible(32, 32, 32, "fp16")
    assert not ok and "depthwise" in why
    assert oc.conv_tensor_core_eligible(24, 64, 1, "fp16")[0]
    assert not oc.conv_tensor_core_eligible(24, 64, 1, "int8")[0]  # INT8 wants multiples of 16
    assert oc.matmul_tensor_core_eligible(2048, 1000, "fp16")[0]
    assert not oc.matmul_tensor_core_eligible(2048, 1000, "int8")[0]
    assert not oc.matmul_tensor_core_eligible(64, 64, "fp64")[0]


def test_dtype_bytes_and_broadcast():
    assert oc.dtype_bytes("fp16") == 2 and oc.dtype_bytes("torch.float32") == 4
    assert oc.dtype_bytes("int8") == 1 and oc.dtype_bytes(2) == 2
    with pytest.raises(ValueError):
        oc.dtype_bytes("fp12")
    assert oc.broadcast_shapes((2, 1, 4), (3, 1)) == (2, 3, 4)
    with pytest.raises(ValueError):
        oc.broadcast_shapes((2, 3), (4, 3))


def test_costs_add():
    a = oc.OpCost(flops=10, macs=5, bytes_read=4, bytes_written=2, params=3)
    b = oc.OpCost(flops=1, bytes_read=1, bytes_written=1)
    s = a + b
    assert (s.flops, s.macs, s.bytes, s.params) == (11, 5, 8, 3)
