"""The stages around the model: real pre-processing on the CPU (or GPU) and real post-processing.

Images: JPEG bytes made once at start-up (deterministic) are decoded, resized (short side to 256/224 of the
input size, antialiased), centre-cropped and normalised on the CPU, then uploaded; `--preprocess-device cuda`
decodes with nvJPEG and resizes/normalises on the GPU. Token inputs: synthetic sentences are tokenised on the
CPU (a hashing tokenizer) and uploaded. Other tensors: drawn on the CPU and uploaded.
Post-processing: softmax + top-5 (classification) or box decoding + batched NMS (detection), then the result
is copied to the host and turned into Python objects, as a serving loop would.

Explicit host<->device copies per measured iteration are counted in `copies_per_iteration()` so the memory-copy
analysis can be checked exactly. Planted problems (`--plant`):
- pageable_upload: the input is uploaded from pageable host memory (1 pageable H2D per iteration);
- round_trip: postprocess copies the probabilities to the host and straight back (1 D2H + 1 H2D per iteration);
- constant_upload: a constant (the normalisation mean/std, or a token lookup table) is re-uploaded host->device
  every iteration (1 H2D per iteration); with it, normalisation runs on the GPU.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Optional

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TOPK = 5


@dataclass
class InputSpec:
    kind: str  # 'image' | 'tokens' | 'tensor'
    shape: tuple  # per-sample shape: (3, H, W) / (S,) / anything
    dtype: str = "float32"  # host dtype of the model input ('float32', 'int64', 'float16')
    vocab: int = 0  # tokens only


def _words(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(n)]


class Pipeline:
    def __init__(self, spec: InputSpec, batch: int, device: str, model_dtype, task: str = "classification",
                 pinned: bool = False, plant: tuple = (), preprocess_device: str = "cpu",
                 channels_last: bool = False, seed: int = 0, num_classes: Optional[int] = None):
        import torch

        self.torch = torch
        self.spec = spec
        self.batch = batch
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.model_dtype = model_dtype
        self.task = task
        self.pinned = pinned and self.cuda
        self.plant = tuple(plant)
        self.preprocess_on_gpu = preprocess_device == "cuda" and self.cuda
        self.channels_last = channels_last
        self.rng = np.random.default_rng(seed)
        self._pinned_in = None
        self._pinned_out = None
        self._grid = None
        if spec.kind == "image":
            self._make_images()
        elif spec.kind == "tokens":
            self._make_texts()
            self._lut = np.arange(spec.vocab, dtype=np.int64)  # identity remap table (constant_upload)
        self._mean_std = np.stack([IMAGENET_MEAN, IMAGENET_STD]).reshape(2, 1, 3, 1, 1)
        self._scale = np.ones((1,) + tuple(spec.shape[:1]) + (1,) * max(len(spec.shape) - 1, 0), dtype=np.float32) \
            if spec.kind == "tensor" else None
        self._mean_std_dev = None
        if self.cuda and spec.kind == "image" and "constant_upload" not in self.plant:
            # uploaded once, kept on the device (the clean way), used when normalising on the GPU
            self._mean_std_dev = torch.from_numpy(self._mean_std).to(self.device)

    # ---- synthetic inputs made once -----------------------------------------------------------------------------
    def _make_images(self, n: int = 32) -> None:
        torch = self.torch
        _, h, w = self.spec.shape
        src_h, src_w = int(round(h * 375 / 224)), int(round(w * 500 / 224))  # ImageNet-like photo size
        self.resize_to = int(round(min(h, w) * 256 / 224))
        g = torch.Generator().manual_seed(int(self.rng.integers(1 << 31)))
        self.jpegs = []
        self.raw_images = []
        try:
            from torchvision.io import encode_jpeg

            have_tv = True
        except Exception:  # noqa: BLE001
            have_tv = False
        for _ in range(n):
            low = torch.rand(1, 3, max(src_h // 16, 2), max(src_w // 16, 2), generator=g)
            img = torch.nn.functional.interpolate(low, size=(src_h, src_w), mode="bilinear", align_corners=False)[0]
            img = (img * 200 + torch.rand(3, src_h, src_w, generator=g) * 55).clamp(0, 255).to(torch.uint8)
            if have_tv:
                self.jpegs.append(encode_jpeg(img, quality=90))
            else:
                self.raw_images.append(img)

    def _make_texts(self, n: int = 64) -> None:
        vocab_words = _words(self.rng, 2000)
        seq = self.spec.shape[0]
        self.texts = []
        for _ in range(n):
            k = int(self.rng.integers(seq // 2, seq + seq // 4 + 1))
            self.texts.append(" ".join(self.rng.choice(vocab_words, size=k)))

    # ---- bookkeeping ---------------------------------------------------------------------------------------------
    def copies_per_iteration(self) -> Optional[dict]:
        """Host<->device copies the harness itself issues per measured iteration (None where a library decides,
        e.g. nvJPEG decoding or NMS, which copies a mask to the host)."""
        if not self.cuda or self.preprocess_on_gpu or self.task == "detection":
            return None
        h2d, d2h = 1, 1  # input upload; packed top-k result download
        if "constant_upload" in self.plant:
            h2d += 1
        if "round_trip" in self.plant:
            h2d += 1
            d2h += 1
        return {"h2d": h2d, "d2h": d2h, "h2d_pinned": 1 if self.pinned else 0, "d2h_pinned": 1 if self.pinned else 0}

    # ---- preprocess ----------------------------------------------------------------------------------------------
    def preprocess(self, i: int):
        kind = self.spec.kind
        if kind == "image":
            return self._pre_image(i)
        if kind == "tokens":
            return self._pre_tokens(i)
        return self._pre_tensor(i)

    def _upload(self, host):
        """Host tensor -> device: through a reused pinned staging buffer (async) or straight from pageable memory."""
        torch = self.torch
        if not self.cuda:
            return host
        if self.pinned:
            self._pinned_in = _pinned_like(torch, self._pinned_in, host)
            self._pinned_in.copy_(host)
            return self._pinned_in.to(self.device, non_blocking=True)
        return host.to(self.device)

    def _finish_input(self, x):
        torch = self.torch
        if x.is_floating_point() and self.model_dtype is not None and x.dtype != self.model_dtype:
            x = x.to(self.model_dtype)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _pre_image(self, i: int):
        torch = self.torch
        b = self.batch
        _, h, w = self.spec.shape
        idx = [(i * b + k) % max(len(self.jpegs) or len(self.raw_images), 1) for k in range(b)]
        if self.preprocess_on_gpu:
            return self._pre_image_gpu(idx)
        from torchvision.transforms.v2 import functional as TF

        imgs = []
        for j in idx:
            if self.jpegs:
                from torchvision.io import decode_jpeg

                img = decode_jpeg(self.jpegs[j])
            else:
                img = self.raw_images[j]
            img = TF.resize(img, [self.resize_to], antialias=True)
            img = TF.center_crop(img, [h, w])
            imgs.append(img)
        batch_u8 = torch.stack(imgs)  # (B, 3, H, W) uint8, CPU
        if "constant_upload" in self.plant and self.cuda:
            x = self._upload(batch_u8)
            mean_std = torch.from_numpy(self._mean_std).to(self.device)  # planted: constant re-uploaded
            x = (x.float().div_(255) - mean_std[0]) / mean_std[1]
            return self._finish_input(x)
        x = batch_u8.float().div_(255)
        x = (x - torch.from_numpy(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)
        return self._finish_input(self._upload(x))

    def _pre_image_gpu(self, idx):
        torch = self.torch
        from torchvision.io import decode_jpeg

        _, h, w = self.spec.shape
        datas = [self.jpegs[j] for j in idx]
        try:
            imgs = decode_jpeg(datas, device=self.device)  # nvJPEG
        except Exception:  # noqa: BLE001 - no nvJPEG in this build: decode on the CPU, rest on the GPU
            imgs = [decode_jpeg(d).to(self.device) for d in datas]
        out = []
        for img in imgs:
            x = img.unsqueeze(0).float()
            hh, ww = x.shape[-2:]
            s = self.resize_to / min(hh, ww)
            x = torch.nn.functional.interpolate(x, size=(max(int(round(hh * s)), h), max(int(round(ww * s)), w)),
                                                mode="bilinear", antialias=True, align_corners=False)
            top = (x.shape[-2] - h) // 2
            left = (x.shape[-1] - w) // 2
            out.append(x[..., top:top + h, left:left + w])
        x = torch.cat(out).div_(255)
        x = (x - self._mean_std_dev[0]) / self._mean_std_dev[1]
        return self._finish_input(x)

    def _pre_tokens(self, i: int):
        torch = self.torch
        seq = self.spec.shape[0]
        vocab = self.spec.vocab
        ids = np.zeros((self.batch, seq), dtype=np.int64)
        for k in range(self.batch):
            words = self.texts[(i * self.batch + k) % len(self.texts)].split()[:seq]
            ids[k, :len(words)] = [2 + zlib.crc32(wd.encode()) % (vocab - 2) for wd in words]
        x = self._upload(torch.from_numpy(ids))
        if "constant_upload" in self.plant and self.cuda:
            lut = torch.from_numpy(self._lut).to(self.device)  # planted: lookup table re-uploaded
            x = lut[x]
        return x

    def _pre_tensor(self, i: int):
        torch = self.torch
        dt = np.float16 if self.spec.dtype == "float16" else np.float32
        if self.spec.dtype == "int64":
            host = torch.from_numpy(self.rng.integers(0, max(self.spec.vocab, 2),
                                                      size=(self.batch,) + tuple(self.spec.shape)))
        else:
            host = torch.from_numpy(self.rng.standard_normal((self.batch,) + tuple(self.spec.shape)).astype(dt))
        x = self._upload(host)
        if "constant_upload" in self.plant and self.cuda and x.is_floating_point():
            scale = torch.from_numpy(self._scale).to(self.device)  # planted: constant re-uploaded
            x = x * scale.to(x.dtype)
        return self._finish_input(x)

    # ---- postprocess ---------------------------------------------------------------------------------------------
    def postprocess(self, y):
        y = first_tensor(y)
        if self.task == "detection":
            return self._post_detection(y)
        return self._post_classification(y)

    def _download(self, t):
        torch = self.torch
        if not self.cuda:
            return t
        if self.pinned:
            self._pinned_out = _pinned_like(torch, self._pinned_out, t)
            self._pinned_out.copy_(t, non_blocking=True)
            torch.cuda.current_stream().synchronize()
            return self._pinned_out
        return t.cpu()

    def _post_classification(self, y):
        torch = self.torch
        if y.dim() == 1:
            y = y.unsqueeze(0)
        if y.dim() > 2:
            y = y.flatten(1)
        p = torch.softmax(y.float(), dim=-1)
        if "round_trip" in self.plant and self.cuda:
            host = p.cpu()  # planted: D2H ...
            p = host.to(self.device)  # ... and straight back H2D
        k = min(TOPK, p.shape[-1])
        v, idx = torch.topk(p, k, dim=-1)
        packed = torch.cat([v, idx.to(v.dtype)], dim=1)  # one download for both
        host = self._download(packed).numpy()
        return [[(int(host[b, k + j]), float(host[b, j])) for j in range(k)] for b in range(host.shape[0])]

    def _post_detection(self, y, conf: float = 0.25, iou: float = 0.45, max_det: int = 100, pre_nms: int = 1000):
        """y: (B, N, 5 + C) raw head outputs (cx, cy, w, h in pixels, objectness logit, class logits)."""
        torch = self.torch
        from torchvision.ops import batched_nms

        b, n, d = y.shape
        y = y.float()
        boxes = torch.cat([y[..., :2] - y[..., 2:4] / 2, y[..., :2] + y[..., 2:4] / 2], dim=-1)
        cls_scores, labels = (torch.sigmoid(y[..., 5:]) * torch.sigmoid(y[..., 4:5])).max(-1)
        k = min(pre_nms, n)
        top_scores, top_idx = cls_scores.topk(k, dim=1)
        top_boxes = boxes.gather(1, top_idx.unsqueeze(-1).expand(-1, -1, 4))
        top_labels = labels.gather(1, top_idx)
        img_ids = torch.arange(b, device=y.device).unsqueeze(1).expand(-1, k)
        flat_scores = top_scores.reshape(-1)
        keep_mask = flat_scores > conf
        groups = (img_ids * (d - 5) + top_labels).reshape(-1)
        sel = keep_mask.nonzero().squeeze(1)
        keep = batched_nms(top_boxes.reshape(-1, 4)[sel], flat_scores[sel], groups[sel], iou)
        keep = sel[keep]
        packed = torch.cat([top_boxes.reshape(-1, 4)[keep], flat_scores[keep, None],
                            top_labels.reshape(-1)[keep, None].float(), img_ids.reshape(-1)[keep, None].float()], 1)
        host = self._download(packed).numpy()
        out: list[list] = [[] for _ in range(b)]
        for row in host:
            if len(out[int(row[6])]) < max_det:
                out[int(row[6])].append((tuple(float(v) for v in row[:4]), float(row[4]), int(row[5])))
        return out


def first_tensor(y):
    import torch

    if isinstance(y, torch.Tensor):
        return y
    if isinstance(y, dict):
        for v in y.values():
            return first_tensor(v)
    if isinstance(y, (list, tuple)) and y:
        return first_tensor(y[0])
    if hasattr(y, "logits"):
        return y.logits
    raise TypeError(f"model output of type {type(y).__name__} has no tensor to post-process")


def image_spec(size: int = 224) -> InputSpec:
    return InputSpec("image", (3, size, size))


def is_image_shape(shape) -> bool:
    return len(shape) == 3 and shape[0] in (1, 3) and min(shape[1:]) >= 16 and not math.isnan(shape[1])


def _pinned_like(torch, buffer, t):
    """`buffer` when it is a pinned host tensor of t's shape and dtype, else a new one: one staging buffer per
    direction, reused every iteration."""
    if buffer is None or buffer.shape != t.shape or buffer.dtype != t.dtype:
        buffer = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
    return buffer
