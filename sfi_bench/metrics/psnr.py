"""Frame fidelity PSNR: the first/last generated frames against the condition images (scikit-image's definition)."""

from __future__ import annotations

import math

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric, match_size

# Identical images have infinite PSNR; we report this ceiling instead so means stay finite.
MAX_PSNR_DB = 100.0


def psnr(image: np.ndarray, reference: np.ndarray, data_range: float = 255.0) -> float:
    """10·log10(range² / MSE) over all pixels and channels, as skimage.metrics.peak_signal_noise_ratio."""
    if image.shape != reference.shape:
        raise ValueError(f"PSNR needs equal shapes, got {image.shape} and {reference.shape}")
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    if mse == 0.0:
        return MAX_PSNR_DB
    return min(MAX_PSNR_DB, 10.0 * math.log10(data_range**2 / mse))


def endpoint_pairs(sample: ClipSample) -> list[tuple[np.ndarray, np.ndarray]]:
    """(generated, condition) for the first and last frame; generated frames resized to the condition's size."""
    pairs = []
    for generated, condition in [
        (sample.generated[0], sample.first_condition),
        (sample.generated[-1], sample.last_condition),
    ]:
        resized = match_size(generated[None], condition.shape[0], condition.shape[1])[0]
        pairs.append((resized, condition))
    return pairs


class EndpointPSNR(MeanMetric):
    name = "endpoint_psnr"
    label_text = "PSNR"
    direction = "higher"
    version = "1 (skimage definition, RGB, data_range=255, capped at 100 dB)"
    group = "Frame Fidelity"

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        values = [psnr(generated, condition) for generated, condition in endpoint_pairs(sample)]
        return float(np.mean(values)), 1.0
