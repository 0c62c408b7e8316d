"""Where frame i (0-based, presentation order) lies in a stream's timestamps, and back."""

from __future__ import annotations

import math

from sfi_core.video.container import VideoError, demuxed, stream_rate

# Packets read to find the first frame's timestamp: more than any decoder's reorder depth (H.264: 16).
ANCHOR_PACKETS = 24

# Containers whose timestamps are frame counters (a dropped frame leaves a gap): index by a table.
TABLE_FORMATS = ("avi",)


def _first_pts(container, stream) -> int:
    """The smallest timestamp among the first packets from the first keyframe on: frame 0's.

    The stream's start time is not always it: an AVI with B-frames starts at 1 while claiming 0.
    """
    stamps: list[int] = []
    with demuxed(container, stream) as packets:
        for packet in packets:
            if packet.pts is not None and packet.size and not packet.is_discard:
                if stamps or packet.is_keyframe:
                    stamps.append(packet.pts)
            if len(stamps) >= ANCHOR_PACKETS:
                break
    return min(stamps) if stamps else stream.start_time or 0


def _count_fits_duration(stream, frames_per_tick: float) -> bool:
    """True where the container stores a frame count that its duration holds at a constant rate.

    Only then is a timestamp's grid position its position in a full decode: a stream that drops a
    frame (a screen recorder skipping a still frame) leaves a hole in the grid, and Matroska, WebM
    and MPEG-TS store no count to notice it with.
    """
    if not stream.frames or not stream.duration:
        return False
    return abs(stream.duration * frames_per_tick - stream.frames) <= 1.0


class Timeline:
    """Where frame `i` (0-based, presentation order) lies in a stream's timestamps, and back.

    Where the container's frame count and duration prove a constant rate (MP4, MOV), that is
    arithmetic from frame 0's timestamp. Otherwise (a variable-rate phone video, Matroska, AVI, or
    use_table) the packets' timestamps are read once, without decoding, and frame i is the i-th
    smallest.
    """

    def __init__(self, container, stream, use_table: bool | None = None):
        self.rate = stream_rate(stream)
        if not stream.time_base:
            raise VideoError("unknown time base")
        self.time_base = stream.time_base
        # Frames per tick as one float: Fraction arithmetic per packet costs more than decoding tiny videos.
        self.per_tick = float(stream.time_base * self.rate)
        # How far off the grid (in frames) a timestamp may lie: a tick, as Matroska rounds to the
        # millisecond, but never so much that a neighbouring frame would fit.
        self.tolerance = min(self.per_tick, 0.25) + 1e-9
        self.table: dict[int, int] | None = None
        self.sorted_pts: list[int] = []
        if use_table is None:
            use_table = (
                bool(stream.base_rate and self.rate != stream.base_rate)
                or container.format.name in TABLE_FORMATS
                or not _count_fits_duration(stream, self.per_tick)
            )
        if use_table:
            with demuxed(container, stream) as packets:
                stamps = [p.pts for p in packets if p.size and not p.is_discard]
            if stamps and None not in stamps:
                self.sorted_pts = sorted(stamps)
                self.table = {pts: i for i, pts in enumerate(self.sorted_pts)}
            container.seek(0)
        self.start = self.sorted_pts[0] if self.table is not None else _first_pts(container, stream)
        container.seek(0)

    def index(self, pts: int) -> int:
        """The frame at `pts`: the nearest grid position, or -1 for a timestamp not in the table."""
        if self.table is not None:
            return self.table.get(pts, -1)
        return int(round((pts - self.start) * self.per_tick))

    def exact_index(self, pts: int) -> int:
        """The frame at `pts`, or -1 where `pts` is no frame's timestamp (off the constant-rate grid)."""
        if self.table is not None:
            return self.table.get(pts, -1)
        position = (pts - self.start) * self.per_tick
        index = int(round(position))
        return index if abs(position - index) <= self.tolerance else -1

    def seek_pts(self, index: int) -> int:
        if self.table is not None:
            return self.sorted_pts[min(index, len(self.sorted_pts) - 1)]
        return self.start + int(math.floor(index / float(self.rate) / float(self.time_base)))
