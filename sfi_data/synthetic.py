"""Synthetic videos with known content, for tests, benchmarks and the demo's reject cases.

`moving_texture` shifts a smooth random texture by (dx, dy) pixels per frame, so the true optical
flow between frames i and j is exactly ((j - i) * dx, (j - i) * dy) away from the borders.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from sfi_core.video import encode_video


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, richly textured uint8 RGB image (blurred noise plus gradients): good for flow."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.random((height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3.0)
    smooth = (smooth - smooth.min()) / max(float(np.ptp(smooth)), 1e-6)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grad = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], axis=-1)
    return np.clip((0.7 * smooth + 0.3 * grad) * 255, 0, 255).astype(np.uint8)


def moving_texture_frames(
    num_frames: int, width: int = 128, height: int = 96, dx: float = 2.0, dy: float = 0.0, seed: int = 0
) -> np.ndarray:
    """Frames of a texture window sliding over a larger canvas by (dx, dy) px per frame (integer-exact)."""
    margin_x = int(abs(dx) * num_frames) + 1
    margin_y = int(abs(dy) * num_frames) + 1
    canvas = texture(height + 2 * margin_y, width + 2 * margin_x, seed)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        # Content moves by +dx on screen, so the window moves by -dx over the canvas.
        x0 = margin_x - int(round(i * dx))
        y0 = margin_y - int(round(i * dy))
        frames[i] = canvas[y0 : y0 + height, x0 : x0 + width]
    return frames


def numbered_frames(num_frames: int, width: int = 64, height: int = 48) -> np.ndarray:
    """Frames whose mean brightness encodes their index (robust to lossy coding): frame i ~ level 40 + i*k."""
    step = max(1, 180 // max(num_frames - 1, 1))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = 40 + (i * step) % 200
    return frames


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: float = 24.0,
    crf: int | None = 0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode frames; crf=0 keeps tests exact up to the yuv420p conversion."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_video(frames, path, fps=fps, codec=codec, pix_fmt=pix_fmt, crf=crf, preset="ultrafast")
    return path


def write_variable_rate_video(path: Path, frames: np.ndarray, durations_ms: list[int]) -> Path:
    """Lossless H.264 MP4 whose frame i lasts durations_ms[i], as phones record at a variable rate."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "0", "g": "12"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        pts = 0
        for image, duration in zip(frames, durations_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += duration
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def hard_cut_frames(lengths: list[int], width: int = 128, height: int = 96, dx: float = 1.0) -> np.ndarray:
    """Shots of unrelated textures back to back; shot k starts at sum(lengths[:k])."""
    shots = [moving_texture_frames(n, width, height, dx=dx, seed=100 + k) for k, n in enumerate(lengths)]
    return np.concatenate(shots)
