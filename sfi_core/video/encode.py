"""Encoding uint8 RGB frames to a file (libx264 by default)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from sfi_core.video.container import codec_threads


def even_size(width: int, height: int) -> tuple[int, int]:
    """yuv420p needs even sides; odd sides lose their last row/column."""
    return width - width % 2, height - height % 2


def encode_video(
    frames: np.ndarray,
    path: Path,
    fps: float,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    crf: int | None = 18,
    preset: str | None = "medium",
    extra: dict[str, str] | None = None,
    threads: int | None = None,
    container_format: str | None = None,
) -> None:
    """Encode uint8 RGB frames (T, H, W, 3) to `path` at `fps`.

    threads: encoder threads (0: every core); None uses the process's `set_codec_threads` share.
    container_format: FFmpeg muxer name; None guesses it from the file name.
    """
    import av

    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p":
        width, height = even_size(width, height)
        frames = frames[:, :height, :width]
    rate = Fraction(fps).limit_denominator(1001)
    options = dict(extra or {})
    if crf is not None and codec in ("libx264", "libx265"):
        options["crf"] = str(crf)
    if preset is not None and codec in ("libx264", "libx265"):
        options["preset"] = preset
    with av.open(str(path), mode="w", format=container_format or _format_for(path)) as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        # Frame threads, as the ffmpeg command uses: PyAV's default (slice threads) makes x264 cut
        # every frame into one slice per thread, so the bitstream would depend on the core count.
        stream.thread_type = "FRAME"
        stream.thread_count = codec_threads() if threads is None else threads
        for image in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _format_for(path: Path) -> str | None:
    # The temporary names of atomic writes hide the extension from FFmpeg's guess.
    name = path.name.removesuffix(".tmp")
    for ext, fmt in (
        (".mp4", "mp4"),
        (".mkv", "matroska"),
        (".avi", "avi"),
        (".mov", "mov"),
        (".webm", "webm"),
    ):
        if name.endswith(ext) or f"{ext}." in name:
            return fmt
    return None
