"""Opening a container, its video stream, and the reference decode: every frame FFmpeg puts out, in order.

`decoded` is the ground truth the fetch path is checked against; `decode_all` is it as one array.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
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


def codec_threads() -> int:
    """Threads per decoder/encoder this process uses (0: every core); see `set_codec_threads`."""
    return _CODEC_THREADS


def cpu_budget() -> int:
    """Cores this process may keep busy: its codec-thread share, or every core it may run on."""
    if _CODEC_THREADS:
        return _CODEC_THREADS
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class VideoError(Exception):
    """An input that is not a usable video; the message is the manifest's reason."""


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


def decode_all(path) -> np.ndarray:
    """Every frame, in order (tests and benchmarks use it as the ground truth); a path or a binary file."""
    with open_container(path) as container:
        stream = video_stream(container)
        to_rgb = frame_converter()
        return np.stack([to_rgb.reformat(f, format="rgb24").to_ndarray() for f in decoded(container, stream)])
