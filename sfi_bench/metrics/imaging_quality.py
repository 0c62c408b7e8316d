"""VBench imaging quality: MUSIQ (SPAQ checkpoint, pyiqa's architecture), mean over frames, divided by 100.

Preprocessing is VBench's default 'longer' mode: when the longer side exceeds 512, frames are resized
(torchvision bilinear with antialias=False, as VBench 0.1.5 passes it, on the float tensor) to (int(s·H), int(s·W)) with s = 512 / longer
side; then /255. MUSIQ itself maps to [-1, 1] and builds its multi-scale patches. pyiqa is optional.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric, MetricUnavailable, require_package, require_weights

MAX_LONGER_SIDE = 512
PYIQA_PIP = "pip install pyiqa  (then `sfi-bench weights` shows where musiq_spaq_ckpt-358bb6af.pth goes)"


def imaging_preprocess(frames: np.ndarray, device: str = "cpu"):
    """uint8 (N, H, W, 3) -> float (N, 3, h, w) in [0, 1], longer side at most 512 (VBench 'longer' mode)."""
    import torch
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
    height, width = x.shape[-2:]
    if max(height, width) > MAX_LONGER_SIDE:
        scale = MAX_LONGER_SIDE / max(height, width)
        x = TF.resize(x, [int(scale * height), int(scale * width)], antialias=False)
    return x / 255.0


def musiq_frame_scores(model: Callable, pixels) -> np.ndarray:
    """One MUSIQ score (0..100) per frame; frames go one at a time, as VBench feeds them."""
    import torch

    with torch.inference_mode():
        return np.array([float(model(pixels[i : i + 1])) for i in range(len(pixels))], dtype=np.float64)


def load_musiq(path, device: str):
    import torch

    musiq_arch = require_package("pyiqa.archs.musiq_arch", PYIQA_PIP)
    model = musiq_arch.MUSIQ(pretrained=False)  # VBench: MUSIQ(pretrained_model_path=...), num_class=1
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("params", state), strict=True)
    return model.to(device).eval()


class ImagingQuality(MeanMetric):
    name = "imaging_quality"
    label_text = "IQ"
    direction = "higher"
    version = "vbench-0.1.5 (pyiqa MUSIQ-SPAQ, longer side <= 512 without antialias, mean/100)"
    group = "Video Quality"
    weights = ("musiq-spaq",)

    def __init__(self, device: str = "auto", weights_dir=None, model: Callable | None = None) -> None:
        super().__init__(device, weights_dir)
        self.model = model

    def load(self) -> None:
        if self.model is None:
            path = require_weights(self.weights[0], self.weights_dir)
            self.model = load_musiq(path, self.device)

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        if self.model is None:
            raise MetricUnavailable(f"{self.name}: call load() first")
        scores = musiq_frame_scores(self.model, imaging_preprocess(sample.generated, self.device))
        return float(scores.mean()) / 100.0, 1.0
