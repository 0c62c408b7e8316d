"""Video I/O with PyAV: probe, index frames by position, encode (fetching: video_fetch.py).

Frame indices are 0-based positions in presentation order (see Timeline), at a constant or a
variable frame rate. For a virtual segment (issue: scene splitting) `offset` is added, so stages
address a segment's frames as if it were its own file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


# Threads each FFmpeg decoder/encoder may use; 0 lets FFmpeg use every core. A worker that owns only
# part of the machine (a Ray actor with num_cpus=1) sets its share with `set_codec_threads`.
_CODEC_THREADS = 0


def set_codec_threads(count: int) -> None:
    """Threads per decoder/encoder from now on in this process (0: every core)."""
    global _CODEC_THREADS
    if count < 0:
        raise ValueError(f"codec threads must be >= 0 (0 = every core), got {count}")
    _CODEC_THREADS = count


def cpu_budget() -> int:
    """Cores this process may keep busy: its codec-thread share, or every core it may run on."""
    if _CODEC_THREADS:
        return _CODEC_THREADS
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class VideoError(Exception):
    """An input that is not a usable video; the message is the manifest's reason."""


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


def check_readable(path: Path) -> int:
    """Return the file size, or raise VideoError saying why the path is not a readable file."""
    if os.path.islink(path) and not path.exists():
        raise VideoError(f"dangling symlink: {path} -> {os.readlink(path)}")
    if not path.exists():
        raise VideoError(f"file not found: {path}")
    if path.is_dir():
        raise VideoError(f"is a directory: {path}")
    if not os.access(path, os.R_OK):
        raise VideoError(f"permission denied: {path}")
    size = path.stat().st_size
    if size == 0:
        raise VideoError("empty file (0 bytes)")
    return size


def open_container(path: Path, fast: bool = False):
    """Open a container. fast: for frame fetching, where the decoder finds pix_fmt itself.

    Opening runs avformat_find_stream_info, which decodes the first few frames of an H.264 stream
    to learn its pixel format and reorder delay: about as much work as fetching a keyframe. With
    `fast`, that probe decodes keyframes only. The MP4/MOV demuxer takes rate, time base and start
    time from its index, so they come out the same; other demuxers can fill those in from the probe
    (Matroska's start time does), so they are opened again the usual way.
    """
    import av

    # A path, or a binary file object (a clip's bytes read from a training shard).
    target = path if hasattr(path, "read") else str(path)
    try:
        if fast:
            container = av.open(target, metadata_errors="ignore", options={"skip_frame": "nonkey"})
            if container.format.name.startswith("mov,"):
                return container
            container.close()
            if hasattr(target, "seek"):
                target.seek(0)
        return av.open(target, metadata_errors="ignore")
    except av.error.FFmpegError as error:
        raise VideoError(f"not a readable video container ({error.strerror or error})") from error


# Demuxers that read a still image or a text file as a "video" of one frame.
STILL_FORMATS = ("image2", "tty", "gif", "apng", "webp", "ico", "bmp")


def sniff_video(path: Path) -> bool:
    """Whether FFmpeg finds a video stream in the file's content (not a still, a cover picture, or text)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore", options={"probesize": "1048576"}) as container:
            name = container.format.name
            if name.startswith(STILL_FORMATS) or name.endswith("_pipe"):
                return False
            return any(
                not (stream.disposition & av.stream.Disposition.attached_pic)
                for stream in container.streams.video
            )
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return False


def video_stream(container):
    """The first video stream, or VideoError naming the streams there are."""
    streams = container.streams.video
    if not streams:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise VideoError(f"no video stream (streams: {', '.join(kinds)})")
    return streams[0]


@contextlib.contextmanager
def demuxed(container, stream) -> Iterator[Iterator]:
    """`container.demux(stream)`, closed when the block ends, however the loop over it ends.

    PyAV's demux generator left before its end (a `break`, a `return`) and dropped without `close()`
    keeps native memory: about 0.3 KB per file here, which a worker fetching first/last frames of
    10,000 videos kept as megabytes (docs/performance.md). Every early-leaving loop over packets or
    frames goes through this or `decoded`.
    """
    packets = container.demux(stream)
    try:
        yield packets
    finally:
        packets.close()


def is_empty(packet) -> bool:
    """A packet without data that is not the end-of-stream flush: a Theora or VFW "repeat the frame".

    It decodes to no frame (ffprobe counts none), and sent to a decoder it reads as a request to
    drain: FFmpeg refuses the packets after it (EINVAL), and a frame-threaded Theora decoder then
    gives wrong pictures. So no reader sends it.
    """
    return not packet.size and (packet.pts is not None or packet.dts is not None)


def decoded(container, stream) -> Iterator:
    """Every frame of a sequential decode, in order: the ground truth every reader is held to.

    As the ffmpeg command decodes: empty packets are not sent (`is_empty`), a packet the decoder
    rejects costs only its own frame (the error is logged and decoding goes on), and a demuxer error
    ends the stream there, after the decoder
    has given the frames it still holds. Closed with `demuxed` however the loop over it ends.
    """
    import av

    with demuxed(container, stream) as packets:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as error:
                log.info("demuxing stopped (%s); the frames decoded so far are the stream", error)
                packet = None
            if packet is not None and is_empty(packet):
                continue
            try:
                if packet is None:
                    yield from stream.codec_context.decode(None)
                    return
                frames = packet.decode()
            except av.error.EOFError:
                return
            except av.error.FFmpegError as error:
                log.info(
                    "a packet at pts %s did not decode (%s); decoding goes on", packet and packet.pts, error
                )
                continue
            yield from frames


def stream_rate(stream) -> Fraction:
    """The stream's frame rate (average, else guessed, else the base rate), or VideoError."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or float(rate) <= 0:
        raise VideoError("unknown frame rate")
    return rate


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


_CONVERTERS = threading.local()
_FORKED_AWAY: list[dict] = []  # a parent's converters, kept (never freed) in a forked child


def frame_converter(purpose: str = "rgb"):
    """This thread's frame converter for one purpose (one output size and format).

    frame.to_ndarray builds a new swscale context for every frame, which costs more than decoding a
    small frame; a VideoReformatter keeps its context while the conversion stays the same, so each
    purpose (full-size RGB, the scenes stage's small BGR) gets its own.
    """
    converters = getattr(_CONVERTERS, "by_purpose", None)
    if converters is None or _CONVERTERS.pid != os.getpid():
        # A forked child (a DataLoader worker) can neither use nor free its parent's converters:
        # swscale's worker threads do not survive the fork, and both would wait for them forever.
        if converters is not None:
            _FORKED_AWAY.append(converters)
        converters = _CONVERTERS.by_purpose = {}
        _CONVERTERS.pid = os.getpid()
    converter = converters.get(purpose)
    if converter is None:
        from av.video.reformatter import VideoReformatter

        converter = converters[purpose] = VideoReformatter()
    return converter


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


def read_frames(path: Path, indices: list[int], offset: int = 0, reader: str = "pyav") -> np.ndarray:
    """Frames at `indices` (+ `offset`) as uint8 RGB (len, H, W, 3), in the order asked.

    The same frames a full decode (`decode_all`) gives at those positions; see sfi_core.video_fetch.
    """
    from sfi_core.video_fetch import read_frames as fetch

    return fetch(path, indices, offset, reader)


def decode_all(path) -> np.ndarray:
    """Every frame, in order (tests and benchmarks use it as the ground truth); a path or a binary file."""
    with open_container(path) as container:
        stream = video_stream(container)
        to_rgb = frame_converter()
        return np.stack([to_rgb.reformat(f, format="rgb24").to_ndarray() for f in decoded(container, stream)])


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
        stream.thread_count = _CODEC_THREADS if threads is None else threads
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
