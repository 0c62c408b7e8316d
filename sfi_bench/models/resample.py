"""Resample a clip in time to N frames with both endpoints kept (for models whose native lengths differ)."""

from __future__ import annotations

import numpy as np


def resample_positions(num_in: int, num_out: int) -> np.ndarray:
    """Fractional source positions of `num_out` frames spread evenly over `num_in`, first and last exact."""
    if num_in < 1 or num_out < 1:
        raise ValueError(f"need at least one frame in and out, got {num_in} -> {num_out}")
    if num_out == 1:
        return np.zeros(1)
    return np.linspace(0.0, num_in - 1, num_out)


def resample_frames(frames: np.ndarray, num_out: int, mode: str = "nearest") -> np.ndarray:
    """(T, H, W, C) -> (num_out, H, W, C). "nearest" picks whole frames (no ghosting); "linear" blends neighbours.

    Frame 0 and frame T-1 always map to output 0 and num_out-1 exactly.
    """
    positions = resample_positions(len(frames), num_out)
    if mode == "nearest":
        return frames[np.rint(positions).astype(int)]
    if mode != "linear":
        raise ValueError(f"unknown resample mode {mode!r}; use 'nearest' or 'linear'")
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(frames) - 1)
    weight = (positions - low)[:, None, None, None]
    blended = frames[low].astype(np.float32) * (1 - weight) + frames[high].astype(np.float32) * weight
    return np.clip(np.rint(blended), 0, 255).astype(frames.dtype) if frames.dtype == np.uint8 else blended
