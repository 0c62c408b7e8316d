"""The speed-ups of the curation core keep its results: frame skipping, thread shares, parallel clip writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sfi_core import video
from sfi_core.executors.base import limit_threads
from sfi_core.video import cpu_budget, decode_all, encode_video, read_frames, set_codec_threads
from sfi_data.config import CutConfig
from sfi_data.stages.cut import CutStage
from sfi_data.synthetic import moving_texture_frames


@pytest.fixture
def restore_threads():
    import cv2

    before = cv2.getNumThreads()
    yield
    set_codec_threads(0)
    cv2.setNumThreads(before)


@pytest.fixture(scope="module")
def bframe_video(tmp_path_factory) -> Path:
    """x264 veryfast: 3 B-frames with a pyramid, so many frames are non-reference; a keyframe every 12."""
    path = tmp_path_factory.mktemp("perf") / "bframes.mp4"
    frames = moving_texture_frames(90, 64, 48, dx=1.5, dy=0.5, seed=3)
    encode_video(frames, path, 24.0, crf=23, preset="veryfast", extra={"g": "12"})
    return path


def test_read_frames_skipping_non_reference_frames_is_exact(bframe_video):
    every = decode_all(bframe_video)
    n = len(every)
    rng = np.random.default_rng(0)
    for indices in ([0, n - 1], [n - 1], [n - 2, 5], list(range(30, 52)), sorted(rng.choice(n, 9).tolist())):
        got = read_frames(bframe_video, indices)
        assert np.array_equal(got, every[indices]), indices


def test_codec_thread_share_is_validated_and_used(bframe_video, restore_threads):
    with pytest.raises(ValueError, match=">= 0"):
        set_codec_threads(-1)
    set_codec_threads(1)
    assert cpu_budget() == 1
    single = read_frames(bframe_video, [0, 40, 89])
    set_codec_threads(0)
    assert cpu_budget() >= 1
    assert np.array_equal(single, read_frames(bframe_video, [0, 40, 89]))


def test_limit_threads_bounds_codecs_and_opencv(restore_threads):
    import cv2

    limit_threads(1)
    assert video.cpu_budget() == 1
    assert cv2.getNumThreads() == 1


def _cut(root: Path, source: Path, threads: int) -> list[dict]:
    set_codec_threads(threads)
    stage = CutStage(root, CutConfig(preset="ultrafast", score_clips=False))
    return stage.process_row({"video_id": "v", "path": str(source), "num_frames": 90, "fps": 24.0})


def test_cut_writes_the_same_clips_serially_and_side_by_side(tmp_path, bframe_video, restore_threads):
    serial = _cut(tmp_path / "serial", bframe_video, 1)
    parallel = _cut(tmp_path / "parallel", bframe_video, 2)
    assert serial == parallel
    assert [r["status"] for r in parallel] == ["ok"] * 6
    for row in parallel:
        a = decode_all(tmp_path / "serial" / row["clip_path"])
        b = decode_all(tmp_path / "parallel" / row["clip_path"])
        assert len(a) == len(b) == row["num_frames"]
        # Encoder threading may change the bitstream, never the content beyond coding noise.
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 3
        for key in ("first_frame_path", "last_frame_path"):
            serial_png = (tmp_path / "serial" / row[key]).read_bytes()
            assert serial_png == (tmp_path / "parallel" / row[key]).read_bytes()
