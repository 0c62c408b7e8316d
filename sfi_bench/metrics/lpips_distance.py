"""LPIPS (the `lpips` package's network, v0.1 linear heads): video fidelity over generated/ground-truth frame
pairs, and frame fidelity over the first/last generated frames against the condition images.

The linear heads ship inside the `lpips` pip package; the AlexNet/VGG16 backbones are torchvision's
ImageNet weights, looked up in the weights table ($TORCH_HOME or --weights-dir), never downloaded.
"""

from __future__ import annotations

import functools

import numpy as np

from sfi_bench.metrics.base import (
    ClipSample,
    MeanMetric,
    MetricUnavailable,
    require_package,
    require_weights,
)
from sfi_bench.metrics.psnr import GroundTruthMetric

LPIPS_PIP = "pip install lpips==0.1.4"
BACKBONES = {"alex": ("lpips-alex-linear", "alexnet"), "vgg": ("lpips-vgg-linear", "vgg16")}
BATCH_SIZE = 16


def to_lpips_input(frames: np.ndarray, device: str):
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [-1, 1], as lpips.im2tensor does."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float()
    return tensor / 127.5 - 1.0


def lpips_distances(
    model, images: np.ndarray, references: np.ndarray, device: str = "cpu", batch_size: int = BATCH_SIZE
) -> np.ndarray:
    """LPIPS per pair for uint8 (B, H, W, 3) arrays of equal shape."""
    import torch

    if images.shape != references.shape:
        raise ValueError(f"LPIPS needs equal shapes, got {images.shape} and {references.shape}")
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            a = to_lpips_input(images[start : start + batch_size], device)
            b = to_lpips_input(references[start : start + batch_size], device)
            out.append(model(a, b).reshape(-1).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def load_backbone_into(lpips_model, backbone_state: dict) -> None:
    """Copy torchvision `features.{i}.*` weights into lpips' sliced trunk (slices keep the index i as name)."""
    trunk = {}
    for name in lpips_model.net.state_dict():
        _slice, index, param = name.split(".", 2)
        trunk[name] = backbone_state[f"features.{index}.{param}"]
    lpips_model.net.load_state_dict(trunk)


@functools.lru_cache(maxsize=4)
def load_lpips(net: str, device: str, weights_dir: str | None):
    """The LPIPS network with real heads and backbone, loaded once per (net, device, weights_dir)."""
    import torch

    if net not in BACKBONES:
        raise ValueError(f"unknown LPIPS backbone {net!r}; choose from {sorted(BACKBONES)}")
    lpips = require_package("lpips", LPIPS_PIP)
    heads_name, backbone_name = BACKBONES[net]
    heads = require_weights(heads_name, weights_dir)
    backbone = require_weights(backbone_name, weights_dir)
    model = lpips.LPIPS(pretrained=False, net=net, pnet_rand=True, verbose=False)
    model.load_state_dict(torch.load(heads, map_location="cpu", weights_only=True), strict=False)
    load_backbone_into(model, torch.load(backbone, map_location="cpu", weights_only=True))
    return model.to(device).eval()


class _LPIPSBase(MeanMetric):
    direction = "lower"
    cap = 0.0
    net = "alex"
    weights = BACKBONES["alex"]

    def __init__(self, device: str = "auto", weights_dir=None, model=None) -> None:
        super().__init__(device, weights_dir)
        self.model = model.to(self.device).eval() if model is not None else None

    def load(self) -> None:
        if self.model is None:
            self.model = load_lpips(
                self.net, self.device, str(self.weights_dir) if self.weights_dir else None
            )

    def distances(self, images: np.ndarray, references: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise MetricUnavailable(f"{self.name}: call load() first")
        return lpips_distances(self.model, images, references, self.device)


class VideoLPIPS(GroundTruthMetric, _LPIPSBase):
    name = "lpips"
    label_text = "LPIPS"
    version = "lpips-0.1.4 v0.1 alex; mean over all generated/ground-truth frame pairs"
    group = "Video Fidelity"

    def pairs_value(self, generated: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
        values = self.distances(generated, reference)
        # Weighted by pairs, so the overall value is the mean over every frame pair.
        return float(values.mean()), float(len(values))


class EndpointLPIPS(_LPIPSBase):
    name = "endpoint_lpips"
    label_text = "LPIPS (endpoints)"
    version = "lpips-0.1.4 v0.1 alex; first/last generated frame vs condition image"
    group = "Frame Fidelity"

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        from sfi_bench.metrics.psnr import endpoint_pairs

        values = [self.distances(g[None], c[None])[0] for g, c in endpoint_pairs(sample)]
        return float(np.mean(values)), 1.0
