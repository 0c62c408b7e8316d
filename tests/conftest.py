"""Shared fixtures: tiny synthetic videos written with PyAV (no network, no weights)."""

from __future__ import annotations

import os

# One process by default in the tests (and the CLIs they start, which inherit it): each Ray start costs
# seconds on two cores. The Ray paths are tested with --executor ray; the default itself is tested too.
os.environ.setdefault("SFI_EXECUTOR", "local")
from pathlib import Path

import av  # noqa: F401 - before any test module imports decord (vbench does): see load_decord
import cv2  # noqa: F401
import pytest

from sfi_data.synthetic import moving_texture_frames, write_video

# Tests never download: any hub lookup fails at once instead of waiting on a network that is not there.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def make_video(tmp_path: Path):
    """make_video(name, num_frames, fps=24, dx=2, ...) -> Path of a moving-texture H.264 video."""

    def _make(
        name: str,
        num_frames: int,
        fps: float = 24.0,
        dx: float = 2.0,
        dy: float = 0.0,
        width: int = 128,
        height: int = 96,
        seed: int = 0,
        folder: Path | None = None,
        crf: int = 0,
    ) -> Path:
        frames = moving_texture_frames(num_frames, width, height, dx=dx, dy=dy, seed=seed)
        return write_video((folder or tmp_path / "raw") / name, frames, fps=fps, crf=crf)

    return _make
