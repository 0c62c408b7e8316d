"""VBench temporal flickering: (255 − mean |f_i − f_{i+1}|) / 255 over all consecutive frames, no resize."""

from __future__ import annotations

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric


def mean_abs_frame_difference(frames: np.ndarray) -> float:
    """Mean over consecutive pairs of the mean absolute pixel difference (uint8 RGB frames)."""
    if len(frames) < 2:
        raise ValueError(f"temporal flickering needs at least 2 frames, got {len(frames)}")
    # All pairs share a shape, so the mean of per-pair means is the mean of every difference.
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0))
    return float(diffs.mean(dtype=np.float64))


def temporal_flickering_score(frames: np.ndarray) -> float:
    return (255.0 - mean_abs_frame_difference(frames)) / 255.0


class TemporalFlickering(MeanMetric):
    name = "temporal_flickering"
    label_text = "TF"
    direction = "higher"
    version = "vbench-1 (all frames, native size)"
    group = "Video Quality"

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        return temporal_flickering_score(sample.generated), 1.0
