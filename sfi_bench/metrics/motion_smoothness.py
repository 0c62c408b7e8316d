"""VBench motion smoothness: rebuild each odd frame from its even neighbours with AMT-S, score the error.

Score = (255 − mean over odd frames of mean |interpolated − real|) / 255. As in VBench: frames go in as
float /255, padded by edge replication to a multiple of 16, interpolated at t = 0.5 (scale 1), unpadded,
and turned back to uint8 by clipping and truncating (AMT's tensor2img). Only odd frames that have an
interpolated counterpart count (an even-length clip's last frame does not). The AMT-S network code
comes from the optional `vbench` package; the weights are VBench's `amt-s.pth`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric, MetricUnavailable, require_package, require_weights

AMT_PAD_MULTIPLE = 16
BATCH_SIZE = 4
VBENCH_PIP = "pip install --no-deps vbench==0.1.5  (AMT-S network code; its own dependencies are not needed)"
AMT_S_PARAMS = {"corr_radius": 3, "corr_lvls": 4, "num_flows": 3}  # VBench's AMT-S.yaml

# (first, last) float (B, 3, H, W) in [0, 1] -> middle frames, same shape.
Interpolator = Callable[..., object]


def pad_replicate(batch, multiple: int):
    """AMT's InputPadder: replicate edges to a multiple of `multiple`; returns (padded, crop slices)."""
    import torch.nn.functional as F

    height, width = batch.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    top, left = pad_h // 2, pad_w // 2
    padded = F.pad(batch, [left, pad_w - left, top, pad_h - top], mode="replicate")
    return padded, (slice(top, top + height), slice(left, left + width))


def to_uint8_truncated(images) -> np.ndarray:
    """AMT's tensor2img: (B, 3, H, W) in [0, 1] -> uint8 (B, H, W, 3) by *255, clip, truncate."""
    return (images * 255.0).permute(0, 2, 3, 1).float().cpu().numpy().clip(0, 255).astype(np.uint8)


def reconstruct_odd_frames(
    frames: np.ndarray,
    interpolate: Interpolator,
    pad_multiple: int,
    device: str,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 frames interpolated between frames 0-2, 2-4, ... (N ≥ 3)."""
    import torch

    evens = frames[0::2]
    if len(evens) < 2:
        raise ValueError(f"motion smoothness needs at least 3 frames, got {len(frames)}")
    out = []
    with torch.inference_mode():
        for start in range(0, len(evens) - 1, batch_size):
            stop = min(start + batch_size, len(evens) - 1)
            first = (
                torch.from_numpy(np.ascontiguousarray(evens[start:stop])).to(device).permute(0, 3, 1, 2)
                / 255.0
            )
            last = torch.from_numpy(np.ascontiguousarray(evens[start + 1 : stop + 1])).to(device)
            last = last.permute(0, 3, 1, 2) / 255.0
            first, crop = pad_replicate(first.float(), pad_multiple)
            last, _ = pad_replicate(last.float(), pad_multiple)
            middle = interpolate(first, last)
            out.append(to_uint8_truncated(middle[..., crop[0], crop[1]]))
    return np.concatenate(out)


def motion_smoothness_score(frames: np.ndarray, interpolated: np.ndarray) -> float:
    """(255 − mean |interpolated − real odd frame|) / 255 over the odd frames that were interpolated."""
    odd = frames[1::2][: len(interpolated)]
    diffs = [
        np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() for a, b in zip(interpolated, odd, strict=True)
    ]
    return (255.0 - float(np.mean(diffs))) / 255.0


class AMTInterpolator:
    """AMT network at t = 0.5, scale 1 (VBench on any GPU with enough memory, and on CPU)."""

    def __init__(self, model, device: str) -> None:
        self.model, self.device = model.to(device).eval(), device

    def __call__(self, first, last):
        import torch

        embt = torch.full((first.shape[0], 1, 1, 1), 0.5, device=first.device)
        return self.model(first, last, embt, scale_factor=1.0, eval=True)["imgt_pred"]


def load_amt_s(path, device: str) -> AMTInterpolator:
    import importlib

    import torch

    require_package("vbench.third_party.amt", VBENCH_PIP)
    network = importlib.import_module("vbench.third_party.amt.networks.AMT-S")
    model = network.Model(**AMT_S_PARAMS)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["state_dict"])
    return AMTInterpolator(model, device)


class MotionSmoothness(MeanMetric):
    name = "motion_smoothness"
    cap = 1.0
    label_text = "MS"
    direction = "higher"
    version = "vbench-0.1.5 (AMT-S amt-s.pth, odd frames from even neighbours)"
    group = "Video Quality"
    weights = ("amt-s",)
    pad_multiple = AMT_PAD_MULTIPLE

    def __init__(
        self, device: str = "auto", weights_dir=None, interpolate: Interpolator | None = None
    ) -> None:
        super().__init__(device, weights_dir)
        self.interpolate = interpolate

    def load(self) -> None:
        if self.interpolate is None:
            self.interpolate = load_amt_s(require_weights(self.weights[0], self.weights_dir), self.device)

    def clip_value(self, sample: ClipSample) -> tuple[float, float] | None:
        if self.interpolate is None:
            raise MetricUnavailable(f"{self.name}: call load() first")
        if len(sample.generated) < 3:
            return None
        interpolated = reconstruct_odd_frames(
            sample.generated, self.interpolate, self.pad_multiple, self.device
        )
        return motion_smoothness_score(sample.generated, interpolated), 1.0
