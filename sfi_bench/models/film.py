"""`film`: FILM (Reda et al., ECCV 2022) by recursive bisection, so its native lengths are 2^k + 1.

As in the paper (section 4.2), a clip whose N is not 2^k + 1 (e.g. 81) is skipped with the reason
recorded. `--option resample=true` instead generates the next native length above N and lets the
harness resample it to N in time (endpoints kept); the record says so.
Weights: the TorchScript export `film_net_fp32.pt` (weights table entry "film_net_fp32").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.models.simple import check_endpoints

WEIGHTS_NAME = "film_net_fp32"
# FILM's feature pyramid needs sides divisible by 2^7 / 2 at its coarsest level.
PAD_MULTIPLE = 64


def is_native_length(num_frames: int) -> bool:
    """2^k + 1 with k >= 1: 3, 5, 9, 17, 33, 65, 129, ..."""
    gaps = num_frames - 1
    return gaps >= 2 and gaps & (gaps - 1) == 0


def native_length_at_least(num_frames: int) -> int:
    gaps = 2
    while gaps + 1 < num_frames:
        gaps *= 2
    return gaps + 1


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class FilmModel(SFIModel):
    name = "film"
    version = "film_net_fp32"
    description = "FILM by recursive bisection (native N = 2^k+1; other N skipped, or resampled on request)"
    requirements = ("weights: film_net_fp32 (TorchScript)", "GPU recommended")

    def __init__(
        self,
        device: str = "auto",
        weights: str | None = None,
        resample: Any = False,
        weights_dir: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(device=device, weights=weights, **options)
        self.resample = _truthy(resample)
        self.weights_dir = weights_dir
        self.net = None
        self.torch_device = "cpu"

    def load(self) -> None:
        from pathlib import Path

        import torch

        from sfi_core.weights import resolve

        path = resolve(
            WEIGHTS_NAME,
            Path(self.weights_dir) if self.weights_dir else None,
            Path(self.weights) if self.weights else None,
        )
        self.torch_device = (
            "cuda"
            if self.device == "auto" and torch.cuda.is_available()
            else ("cpu" if self.device == "auto" else self.device)
        )
        self.net = torch.jit.load(str(path), map_location=self.torch_device).eval()

    def skip_reason(self, request: SFIRequest) -> str | None:
        """Why this clip is not generated (None: it is)."""
        if is_native_length(request.num_frames) or self.resample:
            return None
        return (
            f"FILM makes 2^k+1 frames by bisection; N={request.num_frames} is not one "
            f"(pass --option resample=true to generate {native_length_at_least(request.num_frames)} and resample)"
        )

    def _midpoints(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """uint8 (B, H, W, 3) pairs -> their t = 0.5 frames, one batched forward pass."""
        import torch
        import torch.nn.functional as F

        def to_tensor(images: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255.0)

        height, width = left.shape[1:3]
        pad = (0, -width % PAD_MULTIPLE, 0, -height % PAD_MULTIPLE)
        image0 = F.pad(to_tensor(left), pad, mode="replicate").to(self.torch_device)
        image1 = F.pad(to_tensor(right), pad, mode="replicate").to(self.torch_device)
        dt = image0.new_full((len(left), 1), 0.5)
        with torch.inference_mode():
            middle = self.net(image0, image1, dt)[:, :, :height, :width].clamp(0.0, 1.0)
        return (middle * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()

    def generate(self, request: SFIRequest) -> SFIResult:
        check_endpoints(request)
        reason = self.skip_reason(request)
        if reason:
            raise ValueError(reason)
        if self.net is None:
            self.load()
        native = (
            request.num_frames
            if is_native_length(request.num_frames)
            else native_length_at_least(request.num_frames)
        )
        frames = np.stack([request.first_frame, request.last_frame])
        while len(frames) < native:
            middles = self._midpoints(frames[:-1], frames[1:])
            woven = np.empty((2 * len(frames) - 1, *frames.shape[1:]), np.uint8)
            woven[0::2], woven[1::2] = frames, middles
            frames = woven
        return SFIResult(frames, {"native_num_frames": native, "bisection_levels": int(np.log2(native - 1))})
