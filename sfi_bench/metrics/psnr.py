"""PSNR (scikit-image's definition): every generated frame against the ground truth, and the endpoints
(first/last generated frame) against the condition images."""

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
    if image.dtype == reference.dtype == np.uint8:
        import cv2

        # An exact integer sum of squares (OpenCV, SIMD): no float64 copies of two 480x832 frames.
        mse = cv2.norm(image, reference, cv2.NORM_L2SQR) / image.size
    else:
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


def ground_truth_pairs(sample: ClipSample, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(generated, ground truth) frame arrays of equal shape, or None when the clip has no ground truth."""
    reference = sample.reference
    if reference is None:
        return None
    if len(reference) != len(sample.generated):
        raise ValueError(
            f"{metric}: {sample.clip_id} has {len(sample.generated)} generated frames but "
            f"{len(reference)} ground-truth frames"
        )
    return match_size(sample.generated, reference.shape[1], reference.shape[2]), reference


class GroundTruthMetric(MeanMetric):
    """A per-clip value from every generated frame and its ground-truth frame; a clip without ground truth
    does not apply. Subclasses implement `pairs_value`."""

    def empty_reason(self) -> str:
        return "no clips with ground truth"

    def clip_value(self, sample: ClipSample) -> tuple[float, float] | None:
        pairs = ground_truth_pairs(sample, self.name)
        return None if pairs is None else self.pairs_value(*pairs)

    def pairs_value(self, generated: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
        """(per-clip value, its weight in the mean) for equal-shape (N, H, W, C) frame arrays."""
        raise NotImplementedError


class EndpointPSNR(MeanMetric):
    name = "endpoint_psnr"
    cap = MAX_PSNR_DB
    label_text = "PSNR (endpoints)"
    direction = "higher"
    version = "1 (skimage definition, RGB, data_range=255, capped at 100 dB)"
    group = "Frame Fidelity"

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        values = [psnr(generated, condition) for generated, condition in endpoint_pairs(sample)]
        return float(np.mean(values)), 1.0


class AllFramePSNR(GroundTruthMetric):
    """Per-frame PSNR of every generated frame against its ground-truth frame, averaged per clip, then over clips."""

    name = "psnr_all"
    cap = MAX_PSNR_DB
    label_text = "PSNR"
    direction = "higher"
    version = "1 (skimage definition per frame, RGB, data_range=255, capped at 100 dB; clip mean, then mean)"
    group = "Video Fidelity"

    def pairs_value(self, generated: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
        return float(np.mean([psnr(g, r) for g, r in zip(generated, reference, strict=True)])), 1.0
