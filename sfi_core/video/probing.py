"""Probing a file: frame rate, frame count (stored, counted from packets, or decoded), size, codec."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sfi_core.video.container import (
    VideoError,
    check_readable,
    decoded,
    demuxed,
    open_container,
    stream_rate,
    video_stream,
)

log = logging.getLogger(__name__)


@dataclass
class ProbeResult:
    fps: float
    num_frames: int
    frame_count_source: str  # container | packets | decode
    width: int
    height: int
    rotation: int
    duration_s: float
    codec: str
    pix_fmt: str | None


def _rotation(stream) -> int:
    rotate = stream.metadata.get("rotate")
    if rotate is not None:
        try:
            return int(float(rotate)) % 360
        except ValueError:
            return 0
    return 0


def probe(path: Path, verify: str = "packets") -> ProbeResult:
    """Container facts, and the number of frames that decode (see `frame_count`)."""
    check_readable(path)
    with open_container(path) as container:
        stream = video_stream(container)
        ctx = stream.codec_context
        fps = float(stream_rate(stream))
        num_frames, source = frame_count(path, container, stream, verify)
        if num_frames <= 0:
            raise VideoError("no video frames")
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / 1_000_000
        else:
            duration_s = num_frames / fps
        return ProbeResult(
            fps=fps,
            num_frames=num_frames,
            frame_count_source=source,
            width=int(ctx.width),
            height=int(ctx.height),
            rotation=_rotation(stream),
            duration_s=duration_s,
            codec=ctx.name,
            pix_fmt=ctx.format.name if ctx.format else None,
        )


def count_packets(container, stream) -> int:
    """Packets that carry a frame (not empty, not marked discard), read without decoding."""
    with demuxed(container, stream) as packets:
        return sum(1 for packet in packets if packet.size and not packet.is_discard)


def frame_count(path: Path, container, stream, verify: str = "packets") -> tuple[int, str]:
    """(frames a sequential decode gives, or a count to check, and where it came from).

    source: container (the count the container stores), packets (counted, for a container that
    stores none) or decode (verify="decode": every frame decoded). A stored count is checked where
    the last frame is read (sfi_data.stages.fetch): containers over-count (an AVI index entry
    without a frame, an MP4 whose last sample does not decode), and the decode that finds it counts
    the frames. Counting packets here instead would cost a demux of every file and still miss the
    frames that do not decode.
    """
    import av

    if verify != "decode":
        stored = int(stream.frames or 0)
        if stored > 0:
            return stored, "container"
        try:
            packets = count_packets(container, stream)
        except av.error.FFmpegError as error:
            packets = 0
            log.info("counting the packets of %s failed (%s)", path, error)
        if packets:
            return packets, "packets"
        log.info("counting the frames of %s by decoding: it stores no count and no packet was read", path)
    with open_container(path) as fresh:  # a seek back to the start can fail (Matroska, non-monotonic DTS)
        return sum(1 for _ in decoded(fresh, video_stream(fresh))), "decode"
