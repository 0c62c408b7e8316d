"""The metric contract: per-clip samples in, mergeable state, per-clip values and set-level results out.

The harness (`sfi-bench score`) builds one ClipSample per generated clip (frames decoded once, shared
by every metric) and calls `update`; `compute` gives the aggregate over everything updated. To get
per-scale results the harness keeps one metric instance per group, or `merge`s partial states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass
class ClipSample:
    clip_id: str
    num_frames: int
    generated: np.ndarray  # uint8 RGB (N, H, W, 3)
    reference: np.ndarray | None  # ground-truth clip, uint8 RGB (N, H, W, 3), or None (import without GT)
    first_condition: np.ndarray  # the condition images (lossless PNGs of the test clip)
    last_condition: np.ndarray
    prompt: str = ""
    fps: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricResult:
    value: float | None  # None: not computed (see reason); never a fake 0
    num_samples: int = 0
    reason: str | None = None


class MetricUnavailable(RuntimeError):
    """A metric cannot run here (missing weights or package); the message says how to fix it."""


class Metric:
    name: ClassVar[str] = "metric"
    # Table 2 direction: "higher" (↑) or "lower" (↓).
    direction: ClassVar[str] = "higher"
    version: ClassVar[str] = "1"
    group: ClassVar[str] = ""  # Video Fidelity | Frame Fidelity | Semantic Fidelity | Video Quality
    weights: ClassVar[tuple[str, ...]] = ()  # names in sfi_data.weights.WEIGHTS

    def load(self) -> None:
        """Load networks (raise MetricUnavailable with the fix when that cannot be done)."""

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, sample: ClipSample) -> float | None:
        """Add one clip; return its per-clip value, or None for set-level metrics (FID, KID)."""
        raise NotImplementedError

    def merge(self, other: Metric) -> None:
        raise NotImplementedError

    def compute(self) -> MetricResult:
        raise NotImplementedError
