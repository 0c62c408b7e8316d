"""KID between generated and ground-truth frames: unbiased MMD² with the cubic polynomial kernel.

k(x, y) = (x·y / d + 1)³ on Inception pool3 features (the same features as FID). Following
torch-fidelity/clean-fid, MMD² is averaged over `num_subsets` random subsets of `subset_size`
(min(1000, n) here; with n ≤ 1000 every subset is the whole set, so the value is exact and
deterministic). Unbiased, so it is usable on the small per-scale sets where FID is not.
"""

from __future__ import annotations

import numpy as np

from sfi_bench.metrics.fid import FeatureSetMetric

NUM_SUBSETS = 100
MAX_SUBSET_SIZE = 1000
SEED = 0


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equal-size samples under the polynomial kernel (diagonals excluded)."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kernel_inception_distance(
    generated: np.ndarray,
    reference: np.ndarray,
    num_subsets: int = NUM_SUBSETS,
    max_subset_size: int = MAX_SUBSET_SIZE,
    seed: int = SEED,
) -> float:
    subset_size = min(len(generated), len(reference), max_subset_size)
    if subset_size == len(generated) == len(reference):
        return mmd2_unbiased(generated, reference)
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(
            generated[rng.choice(len(generated), subset_size, replace=False)],
            reference[rng.choice(len(reference), subset_size, replace=False)],
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(values))


class KID(FeatureSetMetric):
    name = "kid"
    label_text = "KID"
    version = "1 (poly kernel d=3, unbiased MMD², subsets of min(1000, n), fid-helper Inception)"

    def distance(self, generated: np.ndarray, reference: np.ndarray) -> float:
        return kernel_inception_distance(generated, reference)
