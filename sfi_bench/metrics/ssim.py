"""Frame fidelity SSIM: the first/last generated frames against the condition images (scikit-image's definition)."""

from __future__ import annotations

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric
from sfi_bench.metrics.psnr import endpoint_pairs

SSIM_WINDOW = 7  # skimage's default uniform window
SSIM_K1, SSIM_K2 = 0.01, 0.03


def ssim_batch(
    images: np.ndarray, references: np.ndarray, data_range: float = 255.0, device: str = "cpu"
) -> np.ndarray:
    """Mean SSIM per image pair for (B, H, W, C) arrays, equal to skimage.metrics.structural_similarity(
    channel_axis=-1, data_range=data_range) with its defaults: 7x7 uniform window, sample covariance,
    the border of (7 - 1) // 2 pixels excluded, mean over channels."""
    import torch
    import torch.nn.functional as F

    if images.shape != references.shape:
        raise ValueError(f"SSIM needs equal shapes, got {images.shape} and {references.shape}")
    if min(images.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {images.shape[1:3]}"
        )
    x = torch.as_tensor(images, dtype=torch.float64, device=device).permute(0, 3, 1, 2)
    y = torch.as_tensor(references, dtype=torch.float64, device=device).permute(0, 3, 1, 2)

    def window_mean(t):
        # A valid (unpadded) 7x7 mean is exactly skimage's filtered map with the border cropped.
        return F.avg_pool2d(t, SSIM_WINDOW, stride=1)

    count = SSIM_WINDOW**2
    cov_norm = count / (count - 1)
    ux, uy = window_mean(x), window_mean(y)
    vx = cov_norm * (window_mean(x * x) - ux * ux)
    vy = cov_norm * (window_mean(y * y) - uy * uy)
    vxy = cov_norm * (window_mean(x * y) - ux * uy)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return ssim_map.mean(dim=(1, 2, 3)).cpu().numpy()


class EndpointSSIM(MeanMetric):
    name = "endpoint_ssim"
    label_text = "SSIM"
    direction = "higher"
    version = "1 (skimage definition: 7x7 uniform window, sample covariance, RGB mean)"
    group = "Frame Fidelity"

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        pairs = endpoint_pairs(sample)
        if pairs[0][0].shape != pairs[1][0].shape:
            values = [ssim_batch(g[None], c[None], device=self.device)[0] for g, c in pairs]
        else:
            values = ssim_batch(
                np.stack([g for g, _ in pairs]), np.stack([c for _, c in pairs]), device=self.device
            )
        return float(np.mean(values)), 1.0
