"""Scenes: split each source video into single-shot segments with a PySceneDetect detector.

A segment is virtual by default: a row naming the source file and a frame range [start, end), which
the later stages read with `offset=segment_start`. Frames are decoded once, small, with PyAV and fed
to the detector one by one; a cut reported at frame k means a new shot starts at k. Shots longer
than `max_segment_frames` are split into near-equal windows so a long take still yields clips.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.inputs import probe_error_code, resolve_source, unreadable_code
from sfi_core.manifest import atomic_path
from sfi_core.registry import Registry, UnknownNameError
from sfi_core.schemas import SEGMENTS, empty_row
from sfi_core.stage import UNEXPECTED, Stage, describe_error
from sfi_core.video import (
    Timeline,
    VideoError,
    check_readable,
    decoded,
    frame_converter,
    open_container,
    stream_rate,
    video_stream,
)
from sfi_data.config import ScenesConfig

SCENES_INSTALL_HINT = "pip install 'sfi[scenes]'  (or: pip install 'scenedetect>=0.7,<0.8')"


@dataclass(frozen=True)
class DetectorSpec:
    """One PySceneDetect detector: where it lives, its threshold argument and default."""

    target: str  # "module:Class"
    threshold_arg: str
    default_threshold: float
    meaning: str

    def build(self, threshold: float | None, min_scene_len: int):
        module_name, class_name = self.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ImportError(f"scene detection needs PySceneDetect: {SCENES_INSTALL_HINT}") from error
        cls = getattr(module, class_name)
        value = self.default_threshold if threshold is None else threshold
        return cls(**{self.threshold_arg: value, "min_scene_len": min_scene_len})


# Lazy: scenedetect is imported only when a detector is built.
DETECTORS: Registry[DetectorSpec] = Registry(
    "scene detector",
    DetectorSpec,
    {
        "content": DetectorSpec(
            "scenedetect.detectors:ContentDetector",
            "threshold",
            27.0,
            "mean HSV change between consecutive frames (0-255)",
        ),
        "adaptive": DetectorSpec(
            "scenedetect.detectors:AdaptiveDetector",
            "adaptive_threshold",
            3.0,
            "content change relative to its rolling average (robust to fast camera motion)",
        ),
        "histogram": DetectorSpec(
            "scenedetect.detectors:HistogramDetector",
            "threshold",
            0.05,
            "change of the luma histogram (0-1)",
        ),
        "hash": DetectorSpec(
            "scenedetect.detectors:HashDetector",
            "threshold",
            0.395,
            "perceptual-hash distance (0-1)",
        ),
    },
    error=UnknownNameError,
)


def detector_spec(name: str) -> DetectorSpec:
    return DETECTORS.get(name)


def resolved_threshold(config: ScenesConfig) -> float:
    spec = detector_spec(config.detector)
    return spec.default_threshold if config.threshold is None else float(config.threshold)


def segment_id_for(video_id: str, start: int, end: int) -> str:
    """Deterministic: the source id plus the frame range [start, end)."""
    return f"{video_id}_f{start:06d}-{end:06d}"


def shot_ranges(cuts: list[int], num_frames: int) -> list[tuple[int, int]]:
    """[start, end) of every shot, given the first frame of each new shot."""
    bounds = [0] + sorted({c for c in cuts if 0 < c < num_frames}) + [num_frames]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def split_windows(start: int, end: int, max_frames: int | None) -> list[tuple[int, int]]:
    """Split [start, end) into the fewest near-equal windows of at most `max_frames` frames.

    Equal parts (not max_frames plus a remainder) so no window is a short leftover the filter drops.
    """
    length = end - start
    if not max_frames or length <= max_frames:
        return [(start, end)]
    parts = math.ceil(length / max_frames)
    edges = [start + (length * k) // parts for k in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def small_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """Detection size: `target_width` wide (never upscaled), aspect kept, even sides."""
    if width <= target_width:
        return width - width % 2 or width, height - height % 2 or height
    scaled_height = max(2, round(height * target_width / width))
    return target_width, scaled_height - scaled_height % 2


def decode_small(path: Path, width: int) -> tuple[float, Iterator[tuple[int, np.ndarray]]]:
    """fps and an iterator of (frame index, small BGR frame), in presentation order.

    The index comes from the same `Timeline` as `video.read_frames` uses, so segment ranges address
    the same frames the later stages read.
    """
    import av

    check_readable(path)
    container = open_container(path)
    try:
        stream = video_stream(container)
        fps = float(stream_rate(stream))
    except VideoError:
        container.close()
        raise
    stream.thread_type = "AUTO"
    out_w, out_h = small_size(stream.codec_context.width, stream.codec_context.height, width)

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        count = 0
        try:
            timeline = Timeline(container, stream)
            to_small = frame_converter("scenes")
            for frame in decoded(container, stream):
                index = count if frame.pts is None else timeline.index(frame.pts)
                count += 1
                # The decoder's scaler with area averaging: cheaper than a full-size copy plus a resize,
                # and it averages away noise that would otherwise count as change.
                small = to_small.reformat(
                    frame, width=out_w, height=out_h, format="bgr24", interpolation="AREA"
                )
                yield index, small.to_ndarray()
        except av.error.FFmpegError as error:
            raise VideoError(f"decoding failed after {count} frames ({error.strerror or error})") from error
        finally:
            container.close()

    return fps, frames()


@dataclass
class Detection:
    fps: float
    num_frames: int  # one past the last decoded frame index
    cuts: list[int]  # first frame of each new shot


def detect_cuts(path: Path, config: ScenesConfig) -> Detection:
    """Decode `path` once (small) and run the configured detector over every frame."""
    detector = detector_spec(config.detector).build(config.threshold, config.min_scene_len)
    from scenedetect import FrameTimecode

    fps, frames = decode_small(path, config.decode_width)
    rate = Fraction(fps).limit_denominator(1001)
    cuts: list[int] = []
    last = -1
    for index, image in frames:
        if index <= last:
            continue  # a duplicate timestamp: the detector needs increasing frame numbers
        last = index
        cuts.extend(tc.frame_num for tc in detector.process_frame(FrameTimecode(index, rate), image))
    if last < 0:
        raise VideoError("no video frames")
    cuts.extend(tc.frame_num for tc in detector.post_process(FrameTimecode(last, rate)))
    return Detection(fps=fps, num_frames=last + 1, cuts=sorted(set(cuts)))


def _frames_in_ranges(path: Path, ranges: list[tuple[int, int]]) -> Iterator[tuple[int, object]]:
    """(range number, decoded frame) for every source frame inside one of the sorted, disjoint ranges."""
    import av

    with open_container(path) as source:
        stream = video_stream(source)
        stream.thread_type = "AUTO"
        which = 0
        try:
            timeline = Timeline(source, stream)
            for frame in decoded(source, stream):
                if frame.pts is None:
                    continue
                index = timeline.index(frame.pts)
                while which < len(ranges) and index >= ranges[which][1]:
                    which += 1
                if which == len(ranges):
                    return
                if index >= ranges[which][0]:
                    yield which, frame
        except av.error.FFmpegError as error:
            raise VideoError(f"decoding failed ({error.strerror or error})") from error


def write_segment_files(
    path: Path, ranges: list[tuple[int, int]], targets: list[Path], fps: float, crf: int, preset: str
) -> None:
    """Re-encode each [start, end) of `path` to its target, in one sequential decode of the source."""
    import av

    from sfi_core.video import even_size

    rate = Fraction(fps).limit_denominator(1001)
    for which, group in itertools.groupby(_frames_in_ranges(path, ranges), key=lambda item: item[0]):
        frames = (frame for _, frame in group)
        first = next(frames)
        width, height = even_size(first.width, first.height)
        with atomic_path(targets[which]) as tmp, av.open(str(tmp), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for number, frame in enumerate(itertools.chain([first], frames)):
                image = frame.reformat(width=width, height=height, format="yuv420p")
                # Renumber in the output's own clock (the source's time base would distort the rate).
                image.pts, image.time_base = number, 1 / rate
                for packet in stream.encode(image):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)


class ScenesStage(Stage):
    """Input rows (video_id, source, path) -> one SEGMENTS row per single-shot segment."""

    name = "scenes"
    # A whole-file decode per video: small shards spread a few long sources over the workers.
    shard_size = 4

    def __init__(self, root: Path, config: ScenesConfig | None = None) -> None:
        self.root = Path(root)
        self.config = config or ScenesConfig()
        detector_spec(self.config.detector)  # an unknown name fails before any work starts

    def settings(self) -> dict:
        """What decides the segments; the segment files' encoder too, where they are written."""
        config = self.config
        settings = {
            "detector": config.detector,
            "threshold": resolved_threshold(config),
            "min_scene_len": config.min_scene_len,
            "decode_width": config.decode_width,
            "max_segment_frames": config.max_segment_frames,
            "write_segments": config.write_segments,
        }
        if config.write_segments:
            settings |= {"crf": config.crf, "preset": config.preset}
        return settings

    def check_installed(self) -> None:
        """Raise ImportError with the install line now, rather than one error row per video later."""
        detector_spec(self.config.detector).build(self.config.threshold, self.config.min_scene_len)

    def _base(self, row: dict) -> dict:
        out = empty_row(SEGMENTS)
        out.update(
            video_id=row["video_id"],
            source=row.get("source"),
            path=row["path"],
            detector=self.config.detector,
            detector_threshold=resolved_threshold(self.config),
            min_scene_len=self.config.min_scene_len,
        )
        return out

    def process_row(self, row: dict) -> list[dict]:
        path = resolve_source(row, self.root)
        try:
            found = detect_cuts(path, self.config)
        except VideoError as error:
            return self._error(row, str(error), scenes_error_code(error, path))
        rows = []
        for shot_index, (shot_start, shot_end) in enumerate(shot_ranges(found.cuts, found.num_frames)):
            windows = split_windows(shot_start, shot_end, self.config.max_segment_frames)
            for window_index, (start, end) in enumerate(windows):
                out = self._base(row)
                out.update(
                    segment_id=segment_id_for(row["video_id"], start, end),
                    segment_start=start,
                    segment_end=end,
                    num_frames=end - start,
                    fps=found.fps,
                    shot_index=shot_index,
                    window_index=window_index,
                    status=STATUS_OK,
                    source_frames=found.num_frames,
                )
                rows.append(out)
        if self.config.write_segments:
            targets = [Path("segments") / row["video_id"] / f"{r['segment_id']}.mp4" for r in rows]
            try:
                write_segment_files(
                    path,
                    [(r["segment_start"], r["segment_end"]) for r in rows],
                    [self.root / t for t in targets],
                    found.fps,
                    self.config.crf,
                    self.config.preset,
                )
            except VideoError as error:
                return self._error(row, f"writing segment files: {error}", "segment_write_failed")
            for out, target in zip(rows, targets, strict=True):
                out["segment_path"] = target.as_posix()
        return rows

    def _error(self, row: dict, reason: str, code: str) -> list[dict]:
        out = self._base(row)
        out.update(segment_id=row["video_id"], status=STATUS_ERROR, reason=reason, reason_code=code)
        return [out]

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        return self._error(row, describe_error(error), UNEXPECTED)


def scenes_error_code(error: VideoError, path: Path) -> str:
    """Detection reads the whole file: not readable, no video, or a decode that broke off."""
    if not path.is_file() or str(error).startswith(("empty file", "permission denied")):
        return unreadable_code(path)
    code = probe_error_code(error)
    return "decode_failed" if code == "probe_failed" else code
