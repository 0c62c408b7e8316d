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

from sfi_core import video
from sfi_core.video import (
    Timeline,
    VideoError,
    decoded,
    demuxed,
    frame_converter,
    open_container,
    video_stream,
)

log = logging.getLogger(__name__)

# Why this process fell back to a sequential decode, and how often (the curation log reports it).
FALLBACKS: Counter[str] = Counter()

# Pixel formats decord converts to RGB exactly as FFmpeg does here; the conformance suite found its
# 10-bit 4:2:0 conversion off by up to 12 levels.
DECORD_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})
# Containers whose timestamps decord misreads (its MPEG-TS index is shifted by whole frames).
DECORD_REFUSED_FORMATS = ("mpegts",)
FIELD_ORDER_PROGRESSIVE = 1  # AVFieldOrder: 0 unknown, 1 progressive, 2..5 interlaced orders
# Frames to seek back for a frame the first seek missed: H.264's largest reorder depth.
REORDER_MARGIN = 16
# Demuxers FFmpeg seeks by byte position, without an index: raw elementary streams, MPEG-PS.
UNINDEXED_FORMATS = frozenset(
    {"mpeg", "mpegvideo", "m4v", "h264", "hevc", "h263", "h261", "cavsvideo", "vc1", "rawvideo", "mjpeg"}
)


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
    position, and their timestamps are those of some packets only.
    """
    name = container.format.name
    if name in UNINDEXED_FORMATS or name.split(",")[0] in UNINDEXED_FORMATS:
        return f"{name} has no index to seek by"
    return None


def _checked_in_order(
    frames: Iterator, index_of: Callable[[int], int], from_start: bool, wanted: set[int]
) -> Iterator[tuple[int, object]]:
    """(index, frame) for decoded frames, checking that their timestamps leave no room for doubt.

    Every frame from the seek point on is decoded, and each must be the next position on the
    timeline: a decode from the start begins with frame 0 (that proves the timeline's anchor, e.g. an
    AVI starting at 1), and each later frame is the one after the frame before it. So a reordered
    stream whose timestamps are not presentation times (an AVI with B-frames), a dropped frame, or a
    packet that decodes to no frame shows as a doubt instead of a shifted position. A wanted frame the
    decoder flags as corrupt (references it never saw) is a doubt too.
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
        elif index != previous + 1:
            if index <= previous:
                raise Unproven(f"frame {index} came after frame {previous}", "out_of_order")
            raise Unproven(f"no frame decoded at position {previous + 1}", "hole", timing=True)
        if index in wanted and frame.is_corrupt:
            raise Unproven(f"the decoder flagged frame {index} as corrupt after seeking", "corrupt")
        previous = index
        yield index, frame


def _decode_run(container, stream, run: set[int], timeline: Timeline, drain_early: bool) -> Iterator:
    """Every frame decoded from the current position, in presentation order.

    drain_early: once the packets of every position from the first one sent up to the run's last
    frame have been sent, drain the decoder instead of feeding it more. Nothing sent later can
    change those frames (references come first in decoding order), and it saves decoding the frames
    that only fill the reorder and frame-thread delay. No frame is skipped (skip_frame): a skipped
    frame would hide the very disorder the checks look for.
    """
    ctx = stream.codec_context
    last = max(run)
    sent: set[int] = set()
    with demuxed(container, stream) as packets:
        for packet in packets:
            done = False
            if drain_early and packet.pts is not None and packet.size:
                sent.add(timeline.index(packet.pts))
                done = last in sent and len(sent.intersection(range(min(sent), last + 1))) == last + 1 - min(
                    sent
                )
            frames = packet.decode()
            if done:
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
            raise Unproven(refusal, "unindexed")
        stream.thread_type = "AUTO"
        stream.thread_count = video._CODEC_THREADS
        timeline = Timeline(container, stream, use_table=use_table)
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
                else:
                    if not primed:
                        _prime(container, stream)
                        primed = True
                    container.seek(seek_pts, stream=stream, backward=True)
                remaining = set(run)
                run_frames = _decode_run(container, stream, remaining, timeline, drain_early)
                try:
                    for idx, frame in _checked_in_order(
                        run_frames, timeline.exact_index, from_start, remaining
                    ):
                        if idx in remaining:
                            found[idx] = to_rgb.reformat(frame, format="rgb24").to_ndarray()
                            remaining.discard(idx)
                        if not remaining or idx >= run[-1]:
                            break
                finally:
                    run_frames.close()  # its demuxer too (sfi_core.video.demuxed), before the next seek
                if not remaining:
                    break
            if remaining:
                raise Unproven(f"frame(s) {sorted(remaining)[:3]} not found after seeking", "not_found")
    return found


def seek_proves(path: Path, index: int) -> bool:
    """True where the seeking path reads frame `index` with every check passed (no fallback)."""
    for use_table in (None, True):
        try:
            _seek_frames(path, [index], use_table)
            return True
        except Unproven as doubt:
            if not doubt.timing:
                return False
    return False


def _sequential_frames(path: Path, wanted: list[int]) -> tuple[dict[int, np.ndarray], int]:
    """The frames at `wanted` by decoding from the start (exact by definition); also frames decoded."""
    import av

    found: dict[int, np.ndarray] = {}
    todo, last, count = set(wanted), max(wanted), 0
    with open_container(path) as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        stream.thread_count = video._CODEC_THREADS
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
        raise VideoError(
            f"could not decode frame(s) {shown}: the file decodes to {decodable} frame(s) (truncated or corrupt file?)"
        )
    return found


def decord_refusal(path: Path) -> str | None:
    """Why decord may give other frames than FFmpeg for this file, or None where it is exact."""
    with open_container(path) as container:
        stream = video_stream(container)
        ctx = stream.codec_context
        if container.format.name in DECORD_REFUSED_FORMATS:
            return f"decord misplaces frames in {container.format.name}"
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
        video.check_readable(path)
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
    if not found:
        found = read_frames_pyav(path, wanted)
    return np.stack([found[i] for i in absolute])
