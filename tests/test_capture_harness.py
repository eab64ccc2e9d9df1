"""Harness pieces on the CPU (torch needed; skipped without): per-layer ranges, modules.json, the pipeline."""

import pytest

torch = pytest.importorskip("torch")

from profiler.capture.nvtx_ranges import LeafRanges, Ranges, executed_leaf_modules  # noqa: E402
from profiler.capture.pipeline import InputSpec, Pipeline  # noqa: E402


class RecordingDomain:
    def __init__(self):
        self.events = []

    def get_event_attributes(self, message=None, **_):
        return message

    def push_range(self, attr=None, **_):
        self.events.append(("push", attr))

    def pop_range(self):
        self.events.append(("pop", None))


def recording_ranges():
    r = Ranges("trtscope", enabled=True)
    r._domain = RecordingDomain()
    return r


def small_net():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Sequential(torch.nn.Conv2d(8, 8, 1), torch.nn.ReLU()),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))


def test_leaf_ranges_wrap_and_restore():
    net = small_net().eval()
    x = torch.randn(2, 3, 8, 8)
    leaves, calls = executed_leaf_modules(net, lambda: net(x))
    assert list(leaves) == ["0", "1", "2.0", "2.1", "3", "4", "5"]
    r = recording_ranges()
    lr = LeafRanges(r, leaves)
    lr.install()
    with torch.inference_mode():
        y = net(x)
    ev = r.domain.events
    assert [a for k, a in ev if k == "push"] == ["0", "1", "2.0", "2.1", "3", "4", "5"]
    assert [k for k, _ in ev] == ["push", "pop"] * 7
    lr.remove()
    assert all("forward" not in m.__dict__ for m in net.modules())
    r.domain.events.clear()
    with torch.inference_mode():
        assert torch.equal(net(x), y)
    assert r.domain.events == []


def test_transformer_attention_is_a_leaf_and_records():
    from profiler.backends.models import build_transformer, default_nhead
    from profiler.backends.torch_backend import module_records

    assert default_nhead(512) == 8 and default_nhead(500) == 5
    m = build_transformer(d_model=40, nhead=5, num_layers=2, vocab=100, seq_len=6, num_classes=7).eval()
    ids = torch.randint(0, 100, (2, 6))
    leaves, calls = executed_leaf_modules(m, lambda: m(ids))
    assert "encoder.layers.0.self_attn" in leaves  # MultiheadAttention runs out_proj's weights itself
    assert "encoder.layers.0.self_attn.out_proj" not in leaves
    recs = module_records(leaves, calls)
    attn = next(r for r in recs if r["name"] == "encoder.layers.0.self_attn")
    assert attn["type"] == "MultiheadAttention" and attn["num_heads"] == 5 and attn["embed_dim"] == 40
    assert attn["input_shapes"] == [[2, 6, 40]] * 3 and attn["output_shapes"][0] == [2, 6, 40]
    lin = next(r for r in recs if r["name"] == "encoder.layers.0.linear1")
    assert lin["in_features"] == 40 and lin["out_features"] == 160 and lin["bias"] is True
    assert recs[-1]["name"] == "head" and recs[-1]["dtype"] == "float32"


def test_module_records_repeated_calls():
    from profiler.backends.torch_backend import module_records

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, bias=False)
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(self.act(x)))

    m = Twice().eval()
    leaves, calls = executed_leaf_modules(m, lambda: m(torch.randn(1, 3, 9, 9)))
    recs = module_records(leaves, calls)
    assert [r["name"] for r in recs] == ["act", "conv"]
    act = recs[0]
    assert act["calls"] == 2 and [c["input_shapes"] for c in act["per_call"]] == [[[1, 3, 9, 9]], [[1, 4, 4, 4]]]
    conv = recs[1]
    assert conv["kernel_size"] == [3, 3] and conv["stride"] == [2, 2] and conv["bias"] is False
    assert conv["groups"] == 1 and conv["in_channels"] == 3 and conv["out_channels"] == 4


def test_pipeline_tokens_and_classification():
    p = Pipeline(InputSpec("tokens", (16,), "int64", vocab=100), batch=3, device="cpu", model_dtype=torch.float32)
    x = p.preprocess(0)
    assert x.shape == (3, 16) and x.dtype == torch.int64 and int(x.max()) < 100
    out = p.postprocess(torch.randn(3, 10))
    assert len(out) == 3 and len(out[0]) == 5
    assert out[0][0][1] >= out[0][1][1]  # sorted by probability
    assert p.copies_per_iteration() is None  # CPU: no copies


def test_pipeline_images_cpu():
    pytest.importorskip("torchvision")
    p = Pipeline(InputSpec("image", (3, 32, 32)), batch=2, device="cpu", model_dtype=torch.float16,
                 channels_last=True)
    x = p.preprocess(5)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float16
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert -3 < float(x.float().mean()) < 3  # normalised


def test_pipeline_detection_nms():
    pytest.importorskip("torchvision")
    p = Pipeline(InputSpec("image", (3, 32, 32)), batch=2, device="cpu", model_dtype=torch.float32,
                 task="detection")
    y = torch.zeros(2, 10, 5 + 3)
    y[..., 0:2] = 10.0
    y[..., 2:4] = 5.0
    y[..., 4] = 5.0  # objectness
    y[0, 0, 5] = 5.0  # one confident box in image 0
    y[1, :, 6] = 5.0  # image 1: ten identical boxes of class 1 -> NMS keeps one
    out = p.postprocess(y)
    assert len(out) == 2
    assert any(label == 0 for _, _, label in out[0])
    assert sum(1 for _, _, label in out[1] if label == 1) == 1


def test_copy_counts_logic():
    pipe = Pipeline.__new__(Pipeline)
    pipe.cuda, pipe.preprocess_on_gpu, pipe.task, pipe.pinned = True, False, "classification", False
    pipe.plant = ("pageable_upload", "round_trip", "constant_upload")
    assert pipe.copies_per_iteration() == {"h2d": 3, "d2h": 2, "h2d_pinned": 0, "d2h_pinned": 0}
    pipe.plant, pipe.pinned = (), True
    assert pipe.copies_per_iteration() == {"h2d": 1, "d2h": 1, "h2d_pinned": 1, "d2h_pinned": 1}
    pipe.task = "detection"
    assert pipe.copies_per_iteration() is None


def test_transformer_fast_path_layers_are_the_leaves_that_run():
    """With an even head count PyTorch runs each TransformerEncoderLayer as one fused op (its fast path), which
    it turns off when a module has forward hooks. The recording must see the execution that is measured: the
    encoder layers are leaves, and every leaf gets its range at run time."""
    from profiler.backends.models import build_transformer

    m = build_transformer(d_model=32, nhead=4, num_layers=2, vocab=100, seq_len=6, num_classes=7).eval()
    ids = torch.randint(0, 100, (2, 6))
    leaves, calls = executed_leaf_modules(m, lambda: m(ids))
    assert "encoder.layers.0" in leaves and "encoder.layers.1" in leaves
    assert not any(n.startswith("encoder.layers.0.") for n in leaves)  # fused: its children never ran
    assert all("forward" not in mod.__dict__ for mod in m.modules())  # recording wrappers removed
    r = recording_ranges()
    lr = LeafRanges(r, leaves)
    lr.install()
    with torch.inference_mode():
        m(ids)
    lr.remove()
    assert [a for k, a in r.domain.events if k == "push"] == [c["name"] for c in calls]
