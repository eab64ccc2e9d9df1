"""Architectures built in code with random weights (no downloads): torchvision and timm by name, a transformer
encoder classifier of any width, and a small single-stage detector."""

from __future__ import annotations

from typing import Optional

from profiler.errors import CaptureError

DETECTION_MODELS = ("tiny_yolo",)


def default_nhead(d_model: int) -> int:
    """8 heads where the width allows it, else the largest of 5, 4, 2, 1 that divides it (d_model=500 -> 5)."""
    for h in (8, 5, 4, 2, 1):
        if d_model % h == 0:
            return h
    return 1


def build_transformer(d_model: int = 512, nhead: Optional[int] = None, num_layers: int = 4, vocab: int = 8192,
                      seq_len: int = 128, num_classes: int = 1000):
    import torch
    from torch import nn

    nhead = nhead or default_nhead(d_model)

    class TransformerClassifier(nn.Module):
        """Token embedding + learned positions + nn.TransformerEncoder + mean pool + linear head."""

        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, d_model)
            self.pos = nn.Embedding(seq_len, d_model)
            layer = nn.TransformerEncoderLayer(d_model=d_model, nhead=nhead, dim_feedforward=4 * d_model,
                                               dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, num_classes)
            self.register_buffer("positions", torch.arange(seq_len), persistent=False)

        def forward(self, ids):
            x = self.embed(ids) + self.pos(self.positions[: ids.shape[1]])
            x = self.encoder(x)
            return self.head(self.norm(x).mean(dim=1))

    return TransformerClassifier()


def build_tiny_yolo(num_classes: int = 80, anchors: int = 3, image_size: int = 320):
    """ResNet-18 features (stride 32) + a 1x1 conv head; outputs (B, N, 5 + C) with boxes decoded to pixels."""
    import torch
    import torchvision
    from torch import nn

    class TinyYolo(nn.Module):
        def __init__(self):
            super().__init__()
            r = torchvision.models.resnet18(weights=None)
            self.backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3, r.layer4)
            self.neck = nn.Sequential(nn.Conv2d(512, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256),
                                      nn.SiLU())
            self.head = nn.Conv2d(256, anchors * (5 + num_classes), 1)
            self.anchor_wh = nn.Parameter(torch.tensor([[32.0, 32.0], [64.0, 96.0], [128.0, 128.0]][:anchors]),
                                          requires_grad=False)

        def forward(self, x):
            f = self.head(self.neck(self.backbone(x)))
            b, _, h, w = f.shape
            stride = x.shape[-1] / w
            f = f.view(b, anchors, 5 + num_classes, h, w).permute(0, 1, 3, 4, 2)
            gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device),
                                    indexing="ij")
            grid = torch.stack([gx, gy], -1).to(f.dtype)
            xy = (torch.sigmoid(f[..., :2]) + grid) * stride
            wh = torch.exp(f[..., 2:4].clamp(max=4)) * self.anchor_wh.view(1, anchors, 1, 1, 2).to(f.dtype)
            return torch.cat([xy, wh, f[..., 4:]], -1).reshape(b, -1, 5 + num_classes)

    return TinyYolo()


def build_builtin(name: str, cfg) -> tuple:
    """(model, input kind, per-sample shape, task, extra info) for a built-in name."""
    import torch  # noqa: F401

    if name == "transformer":
        model = build_transformer(cfg.d_model, cfg.nhead, cfg.num_layers, seq_len=cfg.seq_len)
        nhead = cfg.nhead or default_nhead(cfg.d_model)
        info = {"d_model": cfg.d_model, "nhead": nhead, "num_layers": cfg.num_layers, "seq_len": cfg.seq_len,
                "vocab": 8192, "dim_feedforward": 4 * cfg.d_model}
        return model, "tokens", (cfg.seq_len,), "classification", info
    if name == "tiny_yolo":
        size = cfg.image_size if cfg.image_size != 224 else 320
        return build_tiny_yolo(image_size=size), "image", (3, size, size), "detection", {"num_classes": 80}
    if name.startswith("timm:") or name.startswith("timm_"):
        arch = name.split(":", 1)[1] if ":" in name else name[len("timm_"):]
        try:
            import timm
        except ImportError:
            raise CaptureError(f"model {name!r} needs the 'timm' package (pip install timm)")
        try:
            model = timm.create_model(arch, pretrained=False)
        except Exception as exc:  # noqa: BLE001
            raise CaptureError(f"timm cannot build {arch!r}: {str(exc).splitlines()[0][:160]}")
        size = (getattr(model, "pretrained_cfg", {}) or {}).get("input_size") or (3, cfg.image_size, cfg.image_size)
        return model, "image", tuple(size), "classification", {"source": "timm", "arch": arch}
    try:
        import torchvision
    except ImportError:
        raise CaptureError(f"model {name!r} needs torchvision (pip install torchvision)")
    try:
        names = set(torchvision.models.list_models(module=torchvision.models))
    except Exception:  # noqa: BLE001 - old torchvision
        names = {n for n in dir(torchvision.models) if n.islower() and not n.startswith("_")}
    if name not in names:
        extra = ", timm:<name>" if _has("timm") else ""
        raise CaptureError(f"unknown model {name!r}: give a torchvision classification name (e.g. resnet50, "
                           f"mobilenet_v2), transformer, tiny_yolo{extra}, module:function, or a .onnx/.pt file")
    try:
        model = torchvision.models.get_model(name, weights=None)
    except AttributeError:
        model = getattr(torchvision.models, name)(weights=None)
    size = cfg.image_size
    if name.startswith("inception"):
        size = max(size, 299)
    return model, "image", (3, size, size), "classification", {"source": "torchvision"}


def _has(mod: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(mod) is not None
