"""Weight-free reference baselines: a cross-fade (`linear`) and the nearest endpoint (`repeat`)."""

from __future__ import annotations

import numpy as np

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult


def timesteps(num_frames: int) -> np.ndarray:
    """t in [0, 1] of each of the N frames, endpoints included (t = i / (N - 1))."""
    if num_frames < 2:
        raise ValueError(f"an SFI clip has at least its two endpoints, got N={num_frames}")
    return np.linspace(0.0, 1.0, num_frames)


def check_endpoints(request: SFIRequest) -> None:
    first, last = request.first_frame, request.last_frame
    if first.shape != last.shape or first.ndim != 3 or first.shape[-1] != 3:
        raise ValueError(
            f"clip {request.clip_id}: first and last frames must be RGB of one size, got {first.shape} and {last.shape}"
        )


class LinearModel(SFIModel):
    """Frame i = (1 - t) * first + t * last: the cheapest baseline that still changes over time."""

    name = "linear"
    version = "1"
    description = "cross-fade between the endpoints (no motion)"
    requirements = ("none (CPU)",)

    def generate(self, request: SFIRequest) -> SFIResult:
        check_endpoints(request)
        weights = timesteps(request.num_frames)[:, None, None, None]
        first = request.first_frame.astype(np.float32)[None]
        last = request.last_frame.astype(np.float32)[None]
        frames = np.rint(first * (1.0 - weights) + last * weights)
        return SFIResult(np.clip(frames, 0, 255).astype(np.uint8), {"method": "cross-fade"})


class RepeatModel(SFIModel):
    """Each frame copies the nearer endpoint (t < 0.5: first, else last): a hard cut halfway."""

    name = "repeat"
    version = "1"
    description = "nearest endpoint repeated (a hard cut halfway)"
    requirements = ("none (CPU)",)

    def generate(self, request: SFIRequest) -> SFIResult:
        check_endpoints(request)
        use_last = timesteps(request.num_frames) >= 0.5
        frames = np.where(use_last[:, None, None, None], request.last_frame[None], request.first_frame[None])
        return SFIResult(frames.astype(np.uint8), {"method": "nearest endpoint"})
