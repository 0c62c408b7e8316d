"""The contract every SFI model implements: first frame, last frame, prompt, N -> N frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass
class SFIRequest:
    """One test clip's inputs. Frames are uint8 RGB (H, W, 3)."""

    clip_id: str
    first_frame: np.ndarray
    last_frame: np.ndarray
    prompt: str
    num_frames: int  # N, endpoints included
    seed: int = 0


@dataclass
class SFIResult:
    frames: np.ndarray  # uint8 RGB (N, H, W, 3), frames[0] ~ first, frames[-1] ~ last
    # What the harness records with the clip: native length, resampling, sampler settings, versions...
    info: dict[str, Any] = field(default_factory=dict)


class SFIModel:
    """Subclasses set the class attributes and implement `generate` (and `generate_batch` to batch)."""

    name: ClassVar[str] = "model"
    version: ClassVar[str] = "0"
    description: ClassVar[str] = ""
    # Human-readable needs shown by `sfi-bench models`, e.g. "weights: raft_large", "GPU recommended".
    requirements: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: str = "auto", weights: str | None = None, **options: Any) -> None:
        self.device = device
        self.weights = weights
        self.options = options

    def load(self) -> None:
        """Load networks once; the harness calls it before the first clip."""

    def generate(self, request: SFIRequest) -> SFIResult:
        raise NotImplementedError

    def generate_batch(self, requests: list[SFIRequest]) -> list[SFIResult]:
        return [self.generate(r) for r in requests]
