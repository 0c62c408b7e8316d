"""VBench aesthetic quality: LAION's linear head on L2-normalised CLIP ViT-L/14 image features, mean of score/10.

Preprocessing is VBench 0.1.5's `clip_transform(224)` on float frames in 0..255: bicubic resize of the
shorter side to 224 with antialias=False (as VBench passes it), centre crop 224, /255, CLIP mean/std.
The CLIP tower is OpenAI's ViT-L/14 (QuickGELU) loaded through open_clip from the weights table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric, MetricUnavailable, require_package, require_weights

CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FEATURE_DIM = 768
BATCH_SIZE = 32
OPEN_CLIP_PIP = "pip install 'open_clip_torch>=3.3,<3.4'"


def clip_preprocess(frames: np.ndarray, device: str = "cpu", size: int = CLIP_SIZE):
    """uint8 (N, H, W, 3) -> normalised (N, 3, size, size), as VBench's clip_transform on a float tensor."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
    x = TF.resize(x, size, interpolation=InterpolationMode.BICUBIC, antialias=False)
    x = TF.center_crop(x, size) / 255.0
    return TF.normalize(x, CLIP_MEAN, CLIP_STD)


def aesthetic_scores(encode_image: Callable, head, pixels) -> np.ndarray:
    """Per-frame LAION score / 10 for preprocessed pixels."""
    import torch
    import torch.nn.functional as F

    with torch.inference_mode():
        features = F.normalize(encode_image(pixels).float(), dim=-1, p=2)
        return (head(features).reshape(-1) / 10.0).cpu().numpy().astype(np.float64)


def load_laion_head(path) -> object:
    import torch

    head = torch.nn.Linear(FEATURE_DIM, 1)
    head.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return head.eval()


class AestheticQuality(MeanMetric):
    name = "aesthetic_quality"
    label_text = "AQ"
    direction = "higher"
    version = "vbench-0.1.5 (OpenAI CLIP ViT-L/14 + LAION sa_0_4_vit_l_14_linear, all frames)"
    group = "Video Quality"
    weights = ("clip-vit-l-14-openai", "laion-aesthetic-vit-l-14")
    # open_clip's name for OpenAI's ViT-L/14 (QuickGELU); a test swaps in a narrow config of the same family.
    architecture: ClassVar[str] = "ViT-L-14-quickgelu"

    def __init__(
        self, device: str = "auto", weights_dir=None, encode_image: Callable | None = None, head=None
    ) -> None:
        super().__init__(device, weights_dir)
        self.encode_image = encode_image
        self.head = head.to(self.device) if head is not None else None

    def load(self) -> None:
        if self.head is None:
            self.head = load_laion_head(require_weights(self.weights[1], self.weights_dir)).to(self.device)
        if self.encode_image is None:
            open_clip = require_package("open_clip", OPEN_CLIP_PIP)
            tower = require_weights(self.weights[0], self.weights_dir)
            model = open_clip.create_model(self.architecture, pretrained=str(tower), device=self.device)
            self.encode_image = model.eval().encode_image

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        if self.encode_image is None or self.head is None:
            raise MetricUnavailable(f"{self.name}: call load() first")
        scores = [
            aesthetic_scores(
                self.encode_image,
                self.head,
                clip_preprocess(sample.generated[i : i + BATCH_SIZE], self.device),
            )
            for i in range(0, len(sample.generated), BATCH_SIZE)
        ]
        return float(np.concatenate(scores).mean()), 1.0
