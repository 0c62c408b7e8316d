"""read_frames gives exactly the frames of a full sequential decode, for the codecs and containers archives hold.

Each file is made here with PyAV's encoders (tiny and short); the ground truth is `decode_all`.
decord may refuse a file (a one-line error saying to use PyAV) but never returns other frames.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from sfi_core.video import VideoError, decode_all, probe, read_frames
from sfi_core.video import fetch as video_fetch
from sfi_data.synthetic import moving_texture_frames

NUM_FRAMES = 36
# Frame durations (ms) of a phone's variable rate: not a multiple of any one frame period.
VFR_STEPS_MS = (33, 50, 40)
DROPPED_AT = 10  # the grid position without a frame


def _vfr_pts(count: int) -> list[int]:
    stamps, now = [], 0
    for i in range(count):
        stamps.append(now)
        now += VFR_STEPS_MS[i % len(VFR_STEPS_MS)]
    return stamps


def _dropped_pts(count: int) -> list[int]:
    return [i if i < DROPPED_AT else i + 1 for i in range(count)]


@dataclass(frozen=True)
class Case:
    name: str  # file name; the extension picks the container unless `container` says otherwise
    codec: str
    options: dict[str, str] = field(default_factory=dict)
    pix_fmt: str = "yuv420p"
    size: tuple[int, int] = (64, 48)
    fps: int = 24
    num_frames: int = NUM_FRAMES
    pts: Callable[[int], list[int]] | None = None  # frame timestamps in `time_base` units
    time_base: Fraction | None = None
    container: str | None = None
    rotation: int = 0


X264_BFRAMES = "bframes=3:b-pyramid=normal:keyint=12:min-keyint=12:scenecut=0"
X264_ONE_KEYFRAME = "bframes=3:b-pyramid=normal:keyint=1000:min-keyint=1000:scenecut=0"
CASES = [
    # MPEG-4 Part 2 with B-frames in AVI: its first timestamp is 1 (OpenCV's sample files).
    Case("mpeg4_bframes.avi", "mpeg4", {"bf": "2", "g": "12"}),
    Case("mpeg4_bframes_25fps.avi", "mpeg4", {"bf": "2", "g": "12"}, fps=25),
    Case("mpeg4_start3.avi", "mpeg4", {"bf": "2", "g": "12"}, pts=lambda n: list(range(3, 3 + n))),
    Case("msmpeg4v2.avi", "msmpeg4v2"),
    Case("msmpeg4v3.avi", "msmpeg4"),
    Case("mjpeg.avi", "mjpeg", pix_fmt="yuvj420p"),
    Case("h264_bpyramid.mp4", "libx264", {"x264-params": X264_BFRAMES, "crf": "20"}),
    Case("h264_open_gop.mp4", "libx264", {"x264-params": X264_BFRAMES + ":open-gop=1", "crf": "20"}),
    Case("h264_open_gop.mkv", "libx264", {"x264-params": X264_BFRAMES + ":open-gop=1", "crf": "20"}),
    # B-frames make the MP4 muxer write an edit list; timestamps here also start at frame 5.
    Case(
        "h264_editlist_start5.mp4",
        "libx264",
        {"x264-params": X264_BFRAMES},
        pts=lambda n: list(range(5, 5 + n)),
    ),
    Case("h264_start5.mkv", "libx264", {"x264-params": X264_BFRAMES}, pts=lambda n: list(range(5, 5 + n))),
    Case("h264_10bit.mp4", "libx264", {"x264-params": X264_BFRAMES}, pix_fmt="yuv420p10le"),
    # 4:2:2 and 4:4:4 with one keyframe and B-frames (the registries hold no H.264 4:2:2 file; imageio's
    # 4:4:4 cockatoo.mp4 is in tests/test_video_realworld.py).
    Case("h264_422_one_keyframe.mp4", "libx264", {"x264-params": X264_ONE_KEYFRAME}, pix_fmt="yuv422p"),
    Case("h264_444_one_keyframe.mkv", "libx264", {"x264-params": X264_ONE_KEYFRAME}, pix_fmt="yuv444p"),
    Case("h264_vfr.mp4", "libx264", {"x264-params": X264_BFRAMES}, pts=_vfr_pts, time_base=Fraction(1, 1000)),
    Case("h264_vfr.mkv", "libx264", {"x264-params": X264_BFRAMES}, pts=_vfr_pts, time_base=Fraction(1, 1000)),
    # A dropped frame on a constant-rate grid (a screen recorder skipping a still frame).
    Case("h264_dropped_frame.mkv", "libx264", {"x264-params": X264_BFRAMES}, pts=_dropped_pts),
    Case("h264_dropped_frame.mp4", "libx264", {"x264-params": X264_BFRAMES}, pts=_dropped_pts),
    Case("mpeg4_dropped_frame.avi", "mpeg4", {"bf": "2", "g": "12"}, pts=_dropped_pts),
    Case("h264_rotated.mp4", "libx264", {"crf": "20"}, rotation=90),
    Case("h264.ts", "libx264", {"x264-params": X264_BFRAMES}, container="mpegts"),
    Case("hevc.mp4", "libx265", {"x265-params": "keyint=12:bframes=3:log-level=error", "crf": "24"}),
    Case(
        "hevc_10bit_open_gop.mkv",
        "libx265",
        {"x265-params": "keyint=12:bframes=3:open-gop=1:log-level=error", "crf": "24"},
        pix_fmt="yuv420p10le",
    ),
    Case("vp8_altref.webm", "libvpx", {"auto-alt-ref": "1", "lag-in-frames": "16", "g": "12", "b": "500k"}),
    Case(
        "vp9_altref.webm",
        "libvpx-vp9",
        {"auto-alt-ref": "1", "lag-in-frames": "16", "g": "12", "b": "500k", "deadline": "realtime"},
    ),
    Case("av1.webm", "libsvtav1", {"preset": "12", "g": "12", "svtav1-params": "lp=1"}, size=(64, 64)),
    Case("prores.mov", "prores_ks", pix_fmt="yuv422p10le"),
    Case(
        "mpeg2_interlaced.ts",
        "mpeg2video",
        {"bf": "2", "g": "12", "flags": "+ildct+ilme", "top": "1"},
        container="mpegts",
    ),
    Case("ffv1.mkv", "ffv1"),
]
READERS = ("pyav", "decord", "auto")


def encoder_missing(codec: str) -> str | None:
    from av.codec.codec import Codec

    try:
        Codec(codec, "w")
    except Exception:  # noqa: BLE001 - PyAV raises different errors for unknown and unbuilt codecs
        return f"the bundled FFmpeg has no {codec} encoder"
    return None


def write_case(case: Case, folder: Path) -> Path:
    import av

    path = folder / case.name
    width, height = case.size
    frames = moving_texture_frames(case.num_frames, width, height, dx=1.5, dy=0.5, seed=len(case.name))
    stamps = case.pts(case.num_frames) if case.pts else None
    with av.open(str(path), "w", format=case.container) as container:
        stream = container.add_stream(case.codec, rate=case.fps, options=dict(case.options))
        stream.width, stream.height, stream.pix_fmt = width, height, case.pix_fmt
        if case.time_base:
            stream.codec_context.time_base = case.time_base
        if case.rotation:
            stream.set_display_rotation(case.rotation)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if stamps:
                frame.pts = stamps[i]
                frame.time_base = case.time_base or Fraction(1, case.fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, Path | str]:
    """Every case's file, or the reason it cannot be made here."""
    folder = tmp_path_factory.mktemp("zoo")
    return {case.name: encoder_missing(case.codec) or write_case(case, folder) for case in CASES}


def index_sets(count: int) -> list[list[int]]:
    """First/last (the filter), centred ranges (cut), random sets in random order, and single frames."""
    rng = random.Random(count)
    centre = count // 2
    return [
        [0, count - 1],
        list(range(centre - 4, centre + 5)),
        list(range(centre - 8, centre + 9, 2)),
        rng.sample(range(count), 7),
        [count - 1, 0, count // 3],
        [centre],
        [count - 2],
    ]


def case_file(zoo: dict, name: str) -> Path:
    made = zoo[name]
    if isinstance(made, str):
        pytest.skip(made)
    return made


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_reader_gives_the_frames_of_a_full_decode(zoo, case, reader):
    path = case_file(zoo, case.name)
    truth = decode_all(path)
    assert len(truth) == case.num_frames
    for indices in index_sets(len(truth)):
        try:
            got = read_frames(path, indices, reader=reader)
        except VideoError as error:
            # Only decord may refuse a file FFmpeg decodes, and it must say what to do instead.
            assert reader == "decord", f"{reader} failed on {indices}: {error}"
            assert "--reader pyav" in str(error) and "\n" not in str(error)
            continue
        mismatched = [i for i, frame in zip(indices, got, strict=True) if not np.array_equal(frame, truth[i])]
        assert not mismatched, f"{reader} gave other frames than the full decode at {mismatched}"


def test_mpeg4_avi_starting_at_timestamp_one_is_read_exactly_by_default(tmp_path):
    # The reported file: 270 frames of MPEG-4 Part 2 with B-frames whose first frame has timestamp 1.
    import av

    case = Case("long.avi", "mpeg4", {"bf": "2", "g": "30"}, num_frames=270, size=(32, 24))
    path = write_case(case, tmp_path)
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        assert first.pts == 1 and container.streams.video[0].start_time == 0
    truth = decode_all(path)
    assert probe(path).num_frames == len(truth) == 270
    np.testing.assert_array_equal(read_frames(path, [0, 269]), truth[[0, 269]])
    np.testing.assert_array_equal(read_frames(path, list(range(100, 181))), truth[100:181])


# MPEG-4 Part 2 with B-frames in AVI: AVI stores decoding times, so which picture a timestamp labels
# is known only to a sequential decode (real Xvid files, tests/test_video_realworld.py). Never seeks.
REORDERED_IN_AVI = {
    c.name for c in CASES if c.name.endswith(".avi") and c.codec == "mpeg4" and "bf" in c.options
}


def test_seeking_is_kept_where_it_is_proven(zoo):
    # The fast path must stay the fast path on every other file here, not fall back to decoding in order.
    video_fetch.FALLBACKS.clear()
    for case in CASES:
        if isinstance(zoo[case.name], Path) and case.name not in REORDERED_IN_AVI:
            for indices in index_sets(case.num_frames):
                read_frames(zoo[case.name], indices)
    assert not video_fetch.FALLBACKS


def test_a_reordered_stream_in_avi_is_decoded_in_order(zoo):
    video_fetch.FALLBACKS.clear()
    for name in sorted(REORDERED_IN_AVI):
        read_frames(case_file(zoo, name), [0, NUM_FRAMES - 1])
    assert video_fetch.FALLBACKS == {"not_seekable": len(REORDERED_IN_AVI)}


def test_first_and_last_of_a_long_video_are_read_by_seeking(tmp_path):
    # Two runs, the second after a seek: the decoder the first run drained must be usable again.
    case = Case("long.mp4", "libx264", {"x264-params": X264_BFRAMES}, num_frames=150)
    path = write_case(case, tmp_path)
    video_fetch.FALLBACKS.clear()
    np.testing.assert_array_equal(read_frames(path, [0, 149]), decode_all(path)[[0, 149]])
    assert not video_fetch.FALLBACKS


def test_a_fallback_is_counted_and_logged(zoo, caplog, monkeypatch):
    # Whatever makes the seeking path doubt, the answer is a sequential decode, counted and logged.
    path = case_file(zoo, "h264_bpyramid.mp4")

    def doubtful(*args):
        raise video_fetch.Unproven("the first frame decoded is at position 3, not 0", "first_frame")

    monkeypatch.setattr(video_fetch, "_seek_frames", doubtful)
    video_fetch.FALLBACKS.clear()
    indices = [NUM_FRAMES - 1, 0, 17]
    with caplog.at_level(logging.INFO, logger="sfi_core.video.fetch"):
        frames = read_frames(path, indices)
    np.testing.assert_array_equal(frames, decode_all(path)[indices])
    assert video_fetch.FALLBACKS == {"first_frame": 1}
    assert "sequential decode" in caplog.text and "1 fallback(s)" in caplog.text


@pytest.mark.parametrize("name", ["h264_dropped_frame.mkv", "h264_vfr.mkv"])
def test_timestamps_off_the_grid_are_settled_by_a_table_not_a_full_decode(zoo, name):
    path = case_file(zoo, name)
    video_fetch.FALLBACKS.clear()
    last = NUM_FRAMES - 1
    np.testing.assert_array_equal(read_frames(path, [0, last, 20]), decode_all(path)[[0, last, 20]])
    assert not video_fetch.FALLBACKS


def test_frames_past_the_end_are_a_clear_error(zoo):
    path = case_file(zoo, "mpeg4_bframes.avi")
    with pytest.raises(
        VideoError, match=rf"could not decode frame\(s\) \[{NUM_FRAMES}\]: .* {NUM_FRAMES} frame"
    ):
        read_frames(path, [0, NUM_FRAMES])


@pytest.mark.parametrize("name", ["h264_10bit.mp4", "mpeg2_interlaced.ts", "h264_open_gop.mp4"])
def test_decord_refuses_what_it_would_read_wrong(zoo, name):
    # decord 0.6 converts 10-bit differently, shifts MPEG-TS frames and seeks wrong with B-frames.
    path = case_file(zoo, name)
    assert video_fetch.decord_refusal(path)
    with pytest.raises(VideoError, match="--reader pyav"):
        read_frames(path, [0, 5], reader="decord")


def test_loading_decord_leaves_pyav_encoders_and_opencv_png_working(tmp_path):
    """decord's RTLD_GLOBAL libraries must not replace PyAV's libvpx or OpenCV's zlib (a fresh process:
    this one loaded them long ago)."""
    script = """
import sys
import numpy as np
from sfi_core.video.fetch import load_decord
load_decord()
import av, cv2
folder = sys.argv[1]
with av.open(folder + "/v.webm", "w") as container:
    stream = container.add_stream("libvpx-vp9", rate=24)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    for _ in range(3):
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
assert cv2.imwrite(folder + "/f.png", np.full((8, 8, 3), 7, np.uint8))
assert cv2.imread(folder + "/f.png")[0, 0, 0] == 7
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_decoding_after_a_seek_starts_at_a_keyframe(tmp_path):
    # A seek that lands between keyframes (an MPEG-TS seek does): MPEG-4 Part 2 would put out frame 5
    # decoded against a reference it never saw, without an error. The packets before the keyframe
    # are not sent, so the first frame is the keyframe at 12.
    from sfi_core.video import Timeline, open_container, video_stream

    path = write_case(Case("gop12.mkv", "mpeg4", {"g": "12"}), tmp_path)
    with open_container(path) as container:
        stream = video_stream(container)
        timeline = Timeline(container, stream)
        container.seek(timeline.seek_pts(5), stream=stream, any_frame=True)
        frames = video_fetch._decode_run(container, stream, {20}, timeline, False, None, after_seek=True)
        first = next(frames)
        frames.close()
    assert timeline.exact_index(first.pts) == 12 and first.key_frame
