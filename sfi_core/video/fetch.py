"""Frame fetching: seek fast where the reader can prove it has the right frames, else decode in order.

The ground truth is a full sequential decode (`decode_all`): frame i is the i-th frame FFmpeg puts
out. The seeking path maps timestamps to positions (see `Timeline`) and checks every frame it decodes
against that map; when a check fails it does not guess, it falls back to the sequential decode and
counts the fallback (the `FALLBACKS` counter and a log line), so a file FFmpeg decodes fully never
fails and never gets wrong frames.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from sfi_core.video.container import (
    VideoError,
    check_readable,
    codec_threads,
    decoded,
    demuxed,
    frame_converter,
    is_empty,
    open_container,
    video_stream,
)
from sfi_core.video.timeline import Timeline

log = logging.getLogger(__name__)

# Why this process fell back to a sequential decode, and how often (the curation log reports it).
FALLBACKS: Counter[str] = Counter()

# Pixel formats decord converts to RGB exactly as FFmpeg does here; the conformance suite found its
# 10-bit 4:2:0 conversion off by up to 12 levels.
DECORD_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})
# Containers decord indexes as FFmpeg does (its MPEG-TS index is shifted by whole frames; in AVI and ASF
# real files came back with neighbouring frames).
DECORD_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
# Codecs whose decoding is bit-exact by their standard, so decord's older FFmpeg gives the same pixels;
# MPEG-4 Part 2, MS-MPEG4, WMV, MJPEG... leave the IDCT to the decoder and came back a level off.
DECORD_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "libdav1d"})
FIELD_ORDER_PROGRESSIVE = 1  # AVFieldOrder: 0 unknown, 1 progressive, 2..5 interlaced orders
# Decoders that apply skip_frame when a frame comes out rather than when its packet goes in, so the
# setting meant for a later packet drops a wanted frame (libdav1d lost every other AV1 frame).
SKIP_UNSAFE_DECODERS = frozenset({"libdav1d"})
# Demuxers whose packet timestamps are presentation times: a reordered stream (B-frames) is seekable and
# frames between wanted ones may be skipped. Elsewhere (AVI, ASF, FLV, Ogg...) timestamps follow decoding order.
PTS_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts"})
# Decoders whose frame threads decode exactly after a seek's flush (the synthetic and the real-world
# conformance suites). Others decode with slice threads when seeking: FFmpeg's frame-threaded Theora
# decoder gives wrong pictures after a flush (gnome-devel-docs' message-board.ogv), without an error.
FRAME_THREADS_AFTER_SEEK = frozenset(
    {"h264", "hevc", "mpeg4", "mpeg1video", "mpeg2video", "vp8", "vp9", "libdav1d", "ffv1", "mjpeg", "prores"}
)
# Frames to seek back for a frame the first seek missed: H.264's largest reorder depth.
REORDER_MARGIN = 16
# Demuxers FFmpeg seeks by byte position, without an index: raw elementary streams, MPEG-PS.
UNINDEXED_FORMATS = frozenset(
    {"mpeg", "mpegvideo", "m4v", "h264", "hevc", "h263", "h261", "cavsvideo", "vc1", "rawvideo", "mjpeg"}
)


class FramesPastEnd(VideoError):
    """Frames were asked past the last one that decodes; `decodable` is how many frames do."""

    def __init__(self, message: str, decodable: int) -> None:
        super().__init__(message)
        self.decodable = decodable


class Unproven(Exception):
    """The seeking path cannot show that a frame is the one a sequential decode gives at that position.

    code: a stable name for the fallback counter; timing: the doubt is about timestamps, which a
    table of every packet's timestamp settles (a variable rate, a dropped frame).
    """

    def __init__(self, message: str, code: str, timing: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.timing = timing


def seek_refusal(container, stream) -> str | None:
    """Why seeking cannot be proven for this stream at all, or None (then every seek is still checked).

    Raw elementary streams and MPEG program streams have no packet index: FFmpeg seeks them by byte
    position, and their timestamps are those of some packets only. A stream that reorders frames
    (B-frames) in a container that stores decoding times (an Xvid AVI, packed or not) gives its frames
    timestamps that are not their positions: a decode that stops early labels another picture with a
    wanted frame's timestamp, so only a sequential decode knows which frame is which.
    """
    name = container.format.name
    if name in UNINDEXED_FORMATS or name.split(",")[0] in UNINDEXED_FORMATS:
        return f"{name} has no index to seek by"
    if stream.codec_context.has_b_frames and name not in PTS_FORMATS:
        return f"{stream.codec_context.name} reorders frames and {name} stores no presentation timestamps"
    return None


def _checked_in_order(
    frames: Iterator, index_of: Callable[[int], int], from_start: bool, dropped: set[int]
) -> Iterator[tuple[int, object]]:
    """(index, frame) for decoded frames, checking that their timestamps leave no room for doubt.

    Each frame must be the next position on the timeline after the frame before it, except for
    positions whose packets were sent to be dropped (`dropped`: non-reference frames skipped with
    skip_frame); a decode from the start begins with frame 0 (that proves the timeline's anchor,
    e.g. an AVI starting at 1). So a dropped frame in a constant-rate grid, or a packet that decodes
    to no frame, shows as a doubt instead of a shifted position. A frame the decoder flags as
    corrupt (references it never saw) is a doubt too.
    """
    previous = -1
    for frame in frames:
        if frame.pts is None:
            raise Unproven("a frame without a timestamp", "no_timestamp")
        index = index_of(frame.pts)
        if index < 0:
            raise Unproven(f"timestamp {frame.pts} is off the frame grid", "off_grid", timing=True)
        if previous < 0:
            if from_start and index != 0:
                raise Unproven(f"the first frame decoded is at position {index}, not 0", "first_frame")
        elif index <= previous:
            raise Unproven(f"frame {index} came after frame {previous}", "out_of_order")
        else:
            hole = next((i for i in range(previous + 1, index) if i not in dropped), None)
            if hole is not None:
                raise Unproven(f"no frame decoded at position {hole}", "hole", timing=True)
        if frame.is_corrupt:
            # Any flagged frame since the seek: later frames refer to it (the flags are set unevenly,
            # e.g. on an x264 4:4:4 keyframe decoded without the stream's first SEI but not on all
            # of the wrong frames after it).
            raise Unproven(f"the decoder flagged frame {index} as corrupt", "corrupt")
        previous = index
        yield index, frame


def _decode_run(
    container,
    stream,
    run: set[int],
    timeline: Timeline,
    drain_early: bool,
    dropped: set[int] | None,
    after_seek: bool = False,
) -> Iterator:
    """Every frame decoded from the current position, in presentation order.

    dropped: where given, a packet whose frame is not in `run` is decoded with skip_frame=NONREF and
    its position goes into `dropped`: if no other frame refers to it (most B-frames), the decoder
    drops it instead of decoding it. Reference frames are always decoded, so every wanted frame
    comes out exactly as a full decode gives it. Only for containers whose timestamps are
    presentation times (`PTS_FORMATS`): elsewhere a skipped frame could hide the disorder the
    checks look for (an AVI with B-frames stores decoding times).

    after_seek: packets before the first keyframe are not sent.

    drain_early: once the packets of every position from the first one sent up to the run's last
    frame have been sent, drain the decoder instead of feeding it more. Nothing sent later can
    change those frames (references come first in decoding order), and it saves decoding the frames
    that only fill the reorder and frame-thread delay.
    """
    ctx = stream.codec_context
    droppable = "DEFAULT" if ctx.name in SKIP_UNSAFE_DECODERS else "NONREF"
    last = max(run)
    sent: set[int] = set()
    with demuxed(container, stream) as packets:
        for packet in packets:
            if after_seek and packet.size:
                if not packet.is_keyframe:
                    # Decoding from a frame that needs earlier ones gives pictures without an error
                    # (the Theora decoder invents a grey reference), and an MPEG-TS seek lands
                    # anywhere: decoding after a seek starts at a keyframe.
                    continue
                after_seek = False
            if is_empty(packet):
                continue
            done = False
            ctx.skip_frame = "DEFAULT"  # unknown timing, or the flush packet at the end
            if packet.pts is not None and packet.size:
                index = timeline.index(packet.pts)
                sent.add(index)
                if dropped is not None and index not in run and droppable != "DEFAULT":
                    ctx.skip_frame = droppable
                    dropped.add(index)
                if drain_early:
                    low = min(sent)
                    done = last in sent and len(sent.intersection(range(low, last + 1))) == last + 1 - low
            frames = packet.decode()
            if done:
                ctx.skip_frame = "DEFAULT"
                frames += ctx.decode(None)
            yield from frames
            if done:
                return


def _prime(container, stream) -> None:
    """Decode the stream's first keyframe once, before any seek.

    Some facts of a stream are said only at its start and change how every later frame decodes: the
    x264 build in H.264's first SEI (FFmpeg decodes 4:4:4 from x264 before build 151 another way),
    the Xvid/DivX build in MPEG-4 Part 2 user data. A decoder that seeks before it has seen them
    decodes later frames wrong, without an error. The decoder keeps them across the seek's flush.
    """
    container.seek(0)  # also takes a decoder drained by an earlier run out of its end-of-stream state
    with demuxed(container, stream) as packets:
        for packet in packets:
            if packet.size:
                packet.decode()
                break
    container.seek(0)


def _runs(wanted: list[int], rate: float) -> list[list[int]]:
    """Contiguous runs share one seek; a run far from the last decoded frame gets its own seek."""
    runs: list[list[int]] = []
    for idx in wanted:
        if runs and idx - runs[-1][-1] <= 2 * rate:
            runs[-1].append(idx)
        else:
            runs.append([idx])
    return runs


def _seek_frames(path: Path, wanted: list[int], use_table: bool | None) -> dict[int, np.ndarray]:
    """The frames at `wanted` with as little decoding as seeking allows; Unproven when in doubt."""
    import av

    try:
        return _seek_frames_unguarded(path, wanted, use_table)
    except av.error.FFmpegError as error:
        # A seek FFmpeg refuses (EPERM on a Matroska file with non-monotonic DTS), a decode error:
        # the sequential decode decides whether the file is readable.
        raise Unproven(f"seeking failed ({error.strerror or error})", "seek_error") from error


def _seek_frames_unguarded(path: Path, wanted: list[int], use_table: bool | None) -> dict[int, np.ndarray]:
    found: dict[int, np.ndarray] = {}
    with open_container(path, fast=True) as container:
        stream = video_stream(container)
        refusal = seek_refusal(container, stream)
        if refusal:
            raise Unproven(refusal, "not_seekable")
        # Frame threads only where a flushed decoder is known to restart exactly (see the constant).
        stream.thread_type = "AUTO" if stream.codec_context.name in FRAME_THREADS_AFTER_SEEK else "SLICE"
        stream.thread_count = codec_threads()
        timeline = Timeline(container, stream, use_table=use_table)
        skip = container.format.name in PTS_FORMATS
        to_rgb = frame_converter()
        primed = False
        for run in _runs(wanted, float(timeline.rate)):
            # A frame whose pts differs from its packet's is found by decoding the run in full; one
            # that needs frames before the keyframe a seek lands on (a leading B-frame of an open
            # GOP, an AVI seeking by decoding time) by seeking further back.
            for back, drain_early in ((0, True), (0, False), (REORDER_MARGIN, False)):
                seek_pts = timeline.seek_pts(max(run[0] - back, 0))
                from_start = seek_pts <= timeline.start
                if from_start:
                    container.seek(0)  # a stream seek to an MPEG-TS start lands past its first keyframe
                    primed = True  # the decoder sees the stream's start now
                else:
                    if not primed:
                        _prime(container, stream)
                        primed = True
                    container.seek(seek_pts, stream=stream, backward=True)
                remaining, dropped = set(run), set()
                run_frames = _decode_run(
                    container,
                    stream,
                    remaining,
                    timeline,
                    drain_early,
                    dropped if skip else None,
                    not from_start,
                )
                try:
                    for idx, frame in _checked_in_order(
                        run_frames, timeline.exact_index, from_start, dropped
                    ):
                        if idx in remaining:
                            found[idx] = to_rgb.reformat(frame, format="rgb24").to_ndarray()
                            remaining.discard(idx)
                        if not remaining or idx >= run[-1]:
                            break
                finally:
                    run_frames.close()  # its demuxer too (sfi_core.video.demuxed), before the next seek
                    stream.codec_context.skip_frame = "DEFAULT"
                if not remaining:
                    break
            if remaining:
                raise Unproven(f"frame(s) {sorted(remaining)[:3]} not found after seeking", "not_found")
    return found


def _sequential_frames(path: Path, wanted: list[int]) -> tuple[dict[int, np.ndarray], int]:
    """The frames at `wanted` by decoding from the start (exact by definition); also frames decoded."""
    import av

    found: dict[int, np.ndarray] = {}
    todo, last, count = set(wanted), max(wanted), 0
    with open_container(path) as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        stream.thread_count = codec_threads()
        to_rgb = frame_converter()
        try:
            for count, frame in enumerate(decoded(container, stream), start=1):
                if count - 1 in todo:
                    found[count - 1] = to_rgb.reformat(frame, format="rgb24").to_ndarray()
                if count - 1 >= last:
                    break
        except av.error.FFmpegError as error:
            log.info("sequential decode of %s stopped after %d frames: %s", path, count, error)
    return found, count


def read_frames_pyav(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    """Seek with the arithmetic timeline, then with a table of every timestamp, then decode in order."""
    reasons: list[str] = []
    code = ""
    for use_table in (None, True):
        try:
            return _seek_frames(path, wanted, use_table)
        except Unproven as doubt:
            reasons.append(str(doubt))
            code = doubt.code
            if not doubt.timing or use_table:
                break
    FALLBACKS[code] += 1
    log.info(
        "sequential decode of %s: %s (%d fallback(s) in this process)",
        path,
        "; ".join(reasons),
        sum(FALLBACKS.values()),
    )
    found, decodable = _sequential_frames(path, wanted)
    missing = sorted(set(wanted) - set(found))
    if missing:
        shown = f"{missing[:5]}{'…' if len(missing) > 5 else ''}"
        raise FramesPastEnd(
            f"could not decode frame(s) {shown}: the file decodes to {decodable} frame(s) (truncated or corrupt file?)",
            decodable,
        )
    return found


def decord_refusal(path: Path) -> str | None:
    """Why decord may give other frames than FFmpeg for this file, or None where it is exact."""
    with open_container(path) as container:
        stream = video_stream(container)
        ctx = stream.codec_context
        if container.format.name not in DECORD_FORMATS:
            return f"decord may place frames otherwise than FFmpeg in {container.format.name}"
        if ctx.name not in DECORD_CODECS:
            return f"decord's FFmpeg 4 decodes {ctx.name} otherwise than this FFmpeg (it is not bit-exact)"
        if ctx.has_b_frames:
            # Seeking into reordered streams (open GOPs, MPEG-4 B-frames, HEVC) returned wrong frames.
            return "decord seeks to wrong frames in streams with B-frames"
        if ctx.format is None or ctx.format.name not in DECORD_PIX_FMTS:
            return f"decord converts {ctx.format.name if ctx.format else 'this pixel format'} differently"
        field_order = getattr(ctx, "field_order", None)
        if isinstance(field_order, int) and field_order > FIELD_ORDER_PROGRESSIVE:
            return "decord misplaces interlaced frames"
    return None


def _first_line(error: Exception) -> str:
    """decord's message without its '[12:00:00] /github/workspace/src/…cc:151: ' prefix."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return re.sub(r"^\[[\d:]+\]\s+\S+:\d+:\s*", "", lines[0])


def load_decord():
    """Import decord after the libraries whose symbols its bundled ones would otherwise replace.

    decord loads its FFmpeg 4 build with RTLD_GLOBAL, so its old bundled libraries win every symbol
    lookup made after it: OpenCV's libpng then binds to its zlib 1.2.3 and every PNG read fails
    ("libpng error: bad parameters to zlib", tests/test_stats.py), and PyAV's libavcodec binds to its
    libvpx 1.6, so every VP8/VP9 encoder fails to open (EINVAL, tests/test_video_conformance.py).
    Loaded first, OpenCV and PyAV have bound their own.
    """
    import av  # noqa: F401
    import cv2  # noqa: F401
    import decord

    return decord


# Files whose decord frames were compared with PyAV's: (path, size, mtime) -> why decord differs, or None.
_DECORD_CHECKED: dict[tuple[str, int, int], str | None] = {}
DECORD_CHECKED_MAX = 4096


def decord_checked(path: Path, frames: dict[int, np.ndarray]) -> tuple[str | None, dict[int, np.ndarray]]:
    """(why decord's frames differ from PyAV's, PyAV's frames), checked on the first read of each file.

    decord converts some streams to RGB otherwise than FFmpeg does here (real files from the
    registries: H.264 in AVI, VP8, WMV, MS-MPEG4 off by a level or more), which no rule on codec or
    pixel format foresees. So its frames of a file's first read are compared with PyAV's, once per
    file and process; a file where they differ is read with PyAV from then on.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _DECORD_CHECKED:
        return _DECORD_CHECKED[key], {}
    truth = read_frames_pyav(path, sorted(frames))
    differ = [i for i in sorted(frames) if not np.array_equal(frames[i], truth[i])]
    refusal = None
    if differ:
        step = np.abs(frames[differ[0]].astype(np.int16) - truth[differ[0]]).max()
        refusal = f"decord's frame {differ[0]} differs from FFmpeg's (by up to {step} levels)"
    if len(_DECORD_CHECKED) >= DECORD_CHECKED_MAX:
        _DECORD_CHECKED.pop(next(iter(_DECORD_CHECKED)))
    _DECORD_CHECKED[key] = refusal
    return refusal, truth


def read_frames_decord(path: Path, wanted: list[int]) -> dict[int, np.ndarray]:
    decord = load_decord()
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    if wanted and wanted[-1] >= len(reader):
        raise VideoError(f"could not decode frame(s) [{wanted[-1]}]: past the end ({len(reader)} frames)")
    batch = reader.get_batch(wanted).asnumpy()
    return dict(zip(wanted, batch, strict=True))


def read_frames(path: Path, indices: list[int], offset: int = 0, reader: str = "pyav") -> np.ndarray:
    """Frames at `indices` (+ `offset`) as uint8 RGB (len, H, W, 3), in the order asked.

    reader: "pyav" (seeks where it can prove the frames, else decodes in order), "decord" (an error
    where decord would not be exact), or "auto" (decord where it is exact, PyAV otherwise).
    """
    import av

    try:
        return _read_frames(Path(path), indices, offset, reader)
    except (av.error.FFmpegError, OSError) as error:
        # Whatever FFmpeg or the file system says while reading an input is that input's failure
        # (av.error.PermissionError is an OSError too): never a reason to stop a run.
        raise VideoError(f"could not read frames ({type(error).__name__}: {error})") from error


def _read_frames(path: Path, indices: list[int], offset: int, reader: str) -> np.ndarray:
    absolute = [i + offset for i in indices]
    if any(i < 0 for i in absolute):
        raise ValueError(f"negative frame index in {indices}")
    if not absolute:
        raise ValueError("no frame indices given")
    wanted = sorted(set(absolute))
    found: dict[int, np.ndarray] = {}
    if reader in ("decord", "auto"):
        check_readable(path)
        refusal = decord_refusal(path)
        if refusal and reader == "decord":
            raise VideoError(f"{refusal}; read this file with --reader pyav (or auto)")
        if refusal is None:
            try:
                found = read_frames_decord(path, wanted)
            except Exception as error:  # noqa: BLE001 - decord raises bare runtime errors; PyAV decides
                if reader == "decord":
                    raise VideoError(
                        f"decord could not read frames ({_first_line(error)}); read this file with --reader pyav"
                    ) from error
                log.info("decord failed on %s (%s); reading with PyAV", path, error)
        if found:
            refusal, truth = decord_checked(path, found)
            if refusal:
                if reader == "decord":
                    raise VideoError(f"{refusal}; read this file with --reader pyav (or auto)")
                found = truth
    if not found:
        found = read_frames_pyav(path, wanted)
    return np.stack([found[i] for i in absolute])
