"""Retime a clip to N frames equally spaced in time, both endpoints kept (models whose native lengths differ)."""

from __future__ import annotations

import math

import numpy as np


def resample_positions(num_in: int, num_out: int) -> np.ndarray:
    """Fractional source positions of `num_out` frames spread evenly over `num_in`, first and last exact."""
    if num_in < 1 or num_out < 1:
        raise ValueError(f"need at least one frame in and out, got {num_in} -> {num_out}")
    if num_out == 1:
        return np.zeros(1)
    return np.linspace(0.0, num_in - 1, num_out)


def even_native_length(num_frames: int, stride: int = 4, max_native: int = 81, min_native: int = 5) -> int:
    """How many frames a stride*k+1 generator should make so that N of them are equally spaced whole frames.

    The smallest M = stride*k+1 >= max(N, min_native) with (M - 1) a multiple of (N - 1): output i is then
    generated frame i*(M-1)/(N-1), a whole frame, and consecutive outputs are the same time apart. When that
    M exceeds `max_native` (the longest clip the model was trained on; e.g. N = 6 needs 21, N = 23 needs 89)
    the smallest stride*k+1 >= N is returned instead, and `retime` blends neighbours at fractional positions.
    """
    if num_frames < 2:
        raise ValueError(f"SFI needs N >= 2 frames (first and last), got {num_frames}")
    span = num_frames - 1
    step = span * stride // math.gcd(span, stride)  # lcm(N - 1, stride): the smallest common span
    exact = step
    while exact + 1 < max(num_frames, min_native):
        exact += step
    if exact + 1 <= max_native:
        return exact + 1
    return max(-(-span // stride) * stride, min_native - 1) + 1


def is_whole_frame_retime(num_in: int, num_out: int) -> bool:
    """True when every output position of `retime(num_in -> num_out)` is a whole input frame."""
    return num_out == 1 or (num_in - 1) % (num_out - 1) == 0


def resample_frames(frames: np.ndarray, num_out: int, mode: str = "linear") -> np.ndarray:
    """(T, H, W, C) -> (num_out, H, W, C) at equally spaced times; frame 0 and T-1 map to outputs 0 and -1.

    "linear" blends the two neighbours of a fractional position (equal spacing in time; a blend ghosts a
    little) and is exact where positions are whole; "nearest" picks whole frames (uneven spacing in time).
    """
    positions = resample_positions(len(frames), num_out)
    if mode == "nearest":
        return frames[np.rint(positions).astype(int)]
    if mode != "linear":
        raise ValueError(f"unknown resample mode {mode!r}; use 'nearest' or 'linear'")
    low = np.floor(positions + 1e-9).astype(int)
    high = np.minimum(low + 1, len(frames) - 1)
    weight = np.clip(positions - low, 0.0, 1.0)
    whole = weight < 1e-9
    out = frames[low].copy()
    if whole.all():
        return out
    w = weight[~whole][:, None, None, None]
    blended = frames[low[~whole]].astype(np.float32) * (1 - w) + frames[high[~whole]].astype(np.float32) * w
    out[~whole] = (
        np.clip(np.rint(blended), 0, 255).astype(frames.dtype) if frames.dtype == np.uint8 else blended
    )
    return out
