"""Scene splitting units: shot ranges, windows, ids, detectors on synthetic cuts, the hard-cut safety net."""

from __future__ import annotations

import numpy as np
import pytest

from sfi_core.constants import F_MAX, STATUS_ERROR, STATUS_OK
from sfi_core.schemas import SEGMENTS, to_table
from sfi_data.config import CutConfig, ScenesConfig
from sfi_data.stages.cut import consecutive_diffs, hard_cut_reason
from sfi_data.stages.scenes import (
    ScenesStage,
    detect_cuts,
    detector_spec,
    segment_id_for,
    shot_ranges,
    small_size,
    split_windows,
)
from sfi_data.synthetic import hard_cut_frames, moving_texture_frames, write_variable_rate_video, write_video

SHOTS = [40, 25, 60, 30, 20]
TRUE_CUTS = list(np.cumsum(SHOTS)[:-1])  # 40, 65, 125, 155


def test_shot_ranges_cover_the_video_once():
    assert shot_ranges([40, 65], 100) == [(0, 40), (40, 65), (65, 100)]
    assert shot_ranges([], 10) == [(0, 10)]
    # Cuts at the edges or repeated give no empty shot.
    assert shot_ranges([0, 5, 5, 10], 10) == [(0, 5), (5, 10)]


@pytest.mark.parametrize("length", [1, 80, 324, 325, 647, 648, 649, 15000])
def test_windows_are_near_equal_cover_the_shot_and_fit(length):
    windows = split_windows(1000, 1000 + length, 4 * F_MAX)
    assert windows[0][0] == 1000 and windows[-1][1] == 1000 + length
    assert all(a[1] == b[0] for a, b in zip(windows[:-1], windows[1:], strict=True))
    sizes = [b - a for a, b in windows]
    assert max(sizes) <= 4 * F_MAX and max(sizes) - min(sizes) <= 1
    assert len(windows) == -(-length // (4 * F_MAX))  # the fewest windows that fit
    if length >= 4 * F_MAX:
        # A 10-minute shot still yields clips: no window is shorter than f_max.
        assert min(sizes) >= F_MAX


def test_windows_disabled_keeps_the_shot_whole():
    assert split_windows(0, 5000, None) == [(0, 5000)]


def test_segment_ids_are_deterministic_and_distinct():
    assert segment_id_for("film-abc", 0, 120) == segment_id_for("film-abc", 0, 120)
    ids = {segment_id_for("film-abc", a, b) for a, b in [(0, 120), (120, 300), (0, 121)]}
    assert len(ids) == 3 and all(i.startswith("film-abc_f") for i in ids)


def test_unknown_detector_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean adaptive"):
        detector_spec("adaptiv")
    with pytest.raises(ValueError, match="Known: adaptive, content"):
        ScenesStage("/tmp", ScenesConfig(detector="transnet-v9"))


def test_detection_size_keeps_aspect_and_never_upscales():
    assert small_size(1920, 1080, 256) == (256, 144)
    assert small_size(176, 144, 256) == (176, 144)
    w, h = small_size(641, 273, 256)
    assert w == 256 and h % 2 == 0


@pytest.mark.parametrize("detector", ["content", "adaptive"])
def test_synthetic_cuts_are_found_within_one_frame(tmp_path, detector):
    path = write_video(tmp_path / "cuts.mp4", hard_cut_frames(SHOTS, dx=1.0), fps=24, crf=18)
    found = detect_cuts(path, ScenesConfig(detector=detector))
    assert found.num_frames == sum(SHOTS) and found.fps == 24.0
    assert len(found.cuts) == len(TRUE_CUTS)
    for got, want in zip(found.cuts, TRUE_CUTS, strict=True):
        assert abs(got - want) <= 1


def test_cuts_in_a_variable_rate_video_are_frame_positions(tmp_path):
    frames = hard_cut_frames(SHOTS, dx=1.0)
    durations = [33] * (len(frames) // 2) + [100] * (len(frames) - len(frames) // 2)
    found = detect_cuts(write_variable_rate_video(tmp_path / "vfr.mp4", frames, durations), ScenesConfig())
    assert found.num_frames == sum(SHOTS)
    assert len(found.cuts) == len(TRUE_CUTS)
    for got, want in zip(found.cuts, TRUE_CUTS, strict=True):
        assert abs(got - want) <= 1


def test_fast_motion_without_cuts_stays_one_shot(tmp_path):
    frames = moving_texture_frames(150, 128, 96, dx=6.0, seed=4)
    path = write_video(tmp_path / "pan.mp4", frames, fps=25, crf=18)
    assert detect_cuts(path, ScenesConfig()).cuts == []


def test_stage_rows_record_settings_and_windows(tmp_path):
    path = write_video(tmp_path / "raw" / "cuts.mp4", hard_cut_frames([100, 50]), fps=24, crf=18)
    stage = ScenesStage(tmp_path, ScenesConfig(threshold=20.0, min_scene_len=10, max_segment_frames=40))
    rows = stage.process_row({"video_id": "cuts-1", "source": str(path), "path": "raw/cuts.mp4"})
    to_table(rows, SEGMENTS)  # every key is a schema column
    assert all(r["status"] == STATUS_OK for r in rows)
    # Shot 0 (100 frames) -> 3 windows of 33/33/34; shot 1 (50 frames) -> 2 windows of 25.
    assert [(r["shot_index"], r["window_index"]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert [(r["segment_start"], r["segment_end"]) for r in rows] == [
        (0, 33),
        (33, 66),
        (66, 100),
        (100, 125),
        (125, 150),
    ]
    for r in rows:
        assert r["segment_id"] == segment_id_for("cuts-1", r["segment_start"], r["segment_end"])
        assert r["num_frames"] == r["segment_end"] - r["segment_start"]
        assert (r["detector"], r["detector_threshold"], r["min_scene_len"]) == ("content", 20.0, 10)
        assert r["source_frames"] == 150 and r["segment_path"] is None


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.mp4", None, "file not found"),
        ("empty.mp4", b"", "empty file"),
        ("garbage.mp4", b"\x00garbage" * 500, "not a readable video container"),
    ],
)
def test_unreadable_source_gives_one_error_row(tmp_path, name, content, reason):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    rows = ScenesStage(tmp_path).process_row({"video_id": "bad", "source": name, "path": name})
    assert len(rows) == 1
    assert rows[0]["status"] == STATUS_ERROR and reason in rows[0]["reason"]
    assert rows[0]["segment_id"] == "bad" and rows[0]["segment_start"] is None


# --- the hard-cut safety net of the cut stage ---------------------------------------------------


def test_motion_is_not_a_hard_cut_but_a_spliced_clip_is():
    config = CutConfig()
    for dx in (1.0, 2.0, 4.0):
        smooth = moving_texture_frames(17, 128, 96, dx=dx, seed=1)
        assert hard_cut_reason(consecutive_diffs(smooth), config) is None
    spliced = hard_cut_frames([9, 8], dx=1.0)
    reason = hard_cut_reason(consecutive_diffs(spliced), config)
    assert reason is not None and "frames 8-9" in reason


def test_hard_cut_rules_spike_threshold_and_off_switch():
    config = CutConfig(hard_cut_threshold=60.0, hard_cut_min_diff=10.0, hard_cut_ratio=2.0)
    ramp = np.array([12.0, 15.0, 18.0, 20.0, 19.0])  # a passing object: neighbours rise together
    assert hard_cut_reason(ramp, config) is None
    spike = np.array([3.0, 4.0, 25.0, 3.5, 3.0])
    assert "6.2x their neighbours" in hard_cut_reason(spike, config)
    small_flicker = np.array([1.0, 1.0, 8.0, 1.0])  # below hard_cut_min_diff
    assert hard_cut_reason(small_flicker, config) is None
    jump = np.array([30.0, 70.0, 65.0])
    assert "> 60" in hard_cut_reason(jump, config)
    assert hard_cut_reason(spike, CutConfig(hard_cut_ratio=None)) is None
    assert hard_cut_reason(jump, CutConfig(hard_cut_threshold=None)) is None


def test_missing_scenedetect_fails_early_with_the_install_line(tmp_path, monkeypatch):
    import sys

    from sfi_data.scenes import run_scenes

    path = write_video(tmp_path / "a.mp4", moving_texture_frames(10), fps=24)
    monkeypatch.setitem(sys.modules, "scenedetect.detectors", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install 'sfi\[scenes\]'"):
        run_scenes([str(path)], tmp_path / "out")
    assert not (tmp_path / "out" / "work" / "scenes").exists()
