"""filter + cut end to end: bad inputs keep rows, odd names work, exit codes, Ray = local, cut frames exact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sfi_core.driver import NothingToDoError
from sfi_core.schemas import SCHEMA_VERSION
from sfi_core.video import decode_all, encode_video
from sfi_data.config import CutConfig, FilterStageConfig, RangeConfig, RunConfig, ScoreConfig, ThresholdConfig
from sfi_data.pipeline import run_cut, run_filter
from sfi_data.synthetic import write_video

WEIGHT_FREE = ScoreConfig(similarity="hsv-hist", flow="dis", flow_width=128, flow_height=96)
OPEN = ThresholdConfig(similarity=RangeConfig(), flow=RangeConfig())
LOCAL = RunConfig(executor="local", shard_size=2)
CLI = [sys.executable, "-m", "sfi_data.cli"]


def filter_config(**thresholds) -> FilterStageConfig:
    return FilterStageConfig(
        score=WEIGHT_FREE, thresholds=ThresholdConfig(**thresholds) if thresholds else OPEN
    )


def bad_inputs(folder: Path, make_video) -> dict[str, str]:
    """name -> expected reason fragment, for every kind of unusable input the issue lists."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "garbage.mp4").write_bytes(os.urandom(4096))
    good = make_video("whole.mp4", 100, folder=folder / "src")
    data = good.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    write_video(folder / "one_frame.mp4", np.zeros((1, 48, 64, 3), np.uint8))
    audio = folder / "audio_only.m4a"
    _write_audio(audio)
    os.symlink(folder / "nowhere.mp4", folder / "dangling.mp4")
    return {
        "empty.mp4": "empty file",
        "garbage.mp4": "not a readable video container",
        "truncated.mp4": "",  # moov at the end: unreadable container, or unreadable frames
        "one_frame.mp4": "1 frames < 81",
        "audio_only.m4a": "no video stream",
        "dangling.mp4": "dangling symlink",
        "missing.mp4": "file not found",
    }


# The stable code each unusable input gets (truncated: the container or its frames, by where the cut is).
REASON_CODES = {
    "empty.mp4": {"unreadable_file"},
    "garbage.mp4": {"not_a_video"},
    "truncated.mp4": {"not_a_video", "decode_failed", "probe_failed"},
    "one_frame.mp4": {"too_few_frames"},
    "audio_only.m4a": {"not_a_video"},
    "dangling.mp4": {"unreadable_file"},
    "missing.mp4": {"file_not_found"},
}


def _write_audio(path: Path) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in list(stream.encode(frame)) + list(stream.encode()):
            container.mux(packet)


def test_every_unusable_input_keeps_a_row_with_its_reason(tmp_path, make_video):
    raw = tmp_path / "bad"
    expected = bad_inputs(raw, make_video)
    inputs = [str(raw / name) for name in expected] + [str(raw / "src" / "whole.mp4")]
    summary = run_filter(inputs, tmp_path / "out", filter_config(), LOCAL)
    rows = {Path(r["source"]).name: r for r in pq.read_table(tmp_path / "out" / "videos.parquet").to_pylist()}
    assert len(rows) == len(inputs)
    for name, fragment in expected.items():
        assert rows[name]["status"] in ("error", "rejected"), name
        assert rows[name]["reason"], name
        assert fragment in rows[name]["reason"], (name, rows[name]["reason"])
        assert rows[name]["reason_code"] in REASON_CODES[name], (name, rows[name]["reason_code"])
    assert rows["whole.mp4"]["status"] == "ok" and rows["whole.mp4"]["reason"] is None
    assert rows["whole.mp4"]["reason_code"] is None
    assert sum(summary.reasons.values()) == len(expected)
    assert all(
        key.split(": ")[1] in {c for codes in REASON_CODES.values() for c in codes} for key in summary.reasons
    )
    assert rows["whole.mp4"]["schema_version"] == SCHEMA_VERSION
    assert summary.statuses["ok"] == 1


def test_permission_denied_is_a_reason(tmp_path, make_video, monkeypatch):
    path = make_video("locked.mp4", 90)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p).resolve() == path.resolve() else real_access(p, mode)
    )
    other = make_video("open.mp4", 90)
    run_filter([str(path), str(other)], tmp_path / "out", filter_config(), LOCAL)
    row, fine = pq.read_table(tmp_path / "out" / "videos.parquet").to_pylist()
    assert row["status"] == "error" and "permission denied" in row["reason"]
    assert fine["status"] == "ok"


def test_odd_file_names_work_through_the_cli(tmp_path, make_video):
    names = ["with space.mp4", "ünïcødé 視頻.mp4", "-leading-dash.mp4", "semi;colon $(rm -rf x) `q` 'a'.mp4"]
    for i, name in enumerate(names):
        make_video(name, 90, seed=i, folder=tmp_path / "raw")
    out = tmp_path / "out dir"
    result = subprocess.run(
        CLI
        + [
            "filter",
            "--out",
            str(out),
            "--similarity",
            "hsv-hist",
            "--flow",
            "dis",
            "--executor",
            "local",
            "--sim-low",
            "0",
            "--flow-low",
            "0",
            "--",
            str(tmp_path / "raw"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    rows = pq.read_table(out / "videos.parquet").to_pylist()
    assert sorted(Path(r["source"]).name for r in rows) == sorted(names)
    assert all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    assert (tmp_path / "raw").exists() and len(list((tmp_path / "raw").iterdir())) == 4


def invoke(*args: str, env: dict | None = None):
    """The CLI in this process (typer's CliRunner): exit code and the output as one line."""
    from typer.testing import CliRunner

    import sfi_data.commands.curate  # noqa: F401  (registers filter and cut)
    from sfi_data.app import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"} | (env or {}))
    return result.exit_code, " ".join(result.output.split())


def test_exit_codes(tmp_path, make_video, monkeypatch):
    bad = tmp_path / "junk.mp4"
    bad.write_bytes(b"junk")
    weight_free = ["--similarity", "hsv-hist", "--flow", "dis", "--executor", "local"]
    code, text = invoke("filter", str(bad), "--out", str(tmp_path / "o1"), *weight_free)
    assert code == 1 and "could be read (not_a_video" in text
    assert (tmp_path / "o1" / "videos.parquet").exists()  # the reason is still on disk
    code, text = invoke("filter", str(bad), "--executor", "spark")
    assert code == 2 and "executor 'spark' is not one of local, ray" in text
    code, text = invoke("filter", str(bad), "--out", str(tmp_path / "o4"), *weight_free, "--reader", "decrod")
    assert code == 2 and "did you mean 'decord'?" in text and not (tmp_path / "o4").exists()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    code, text = invoke(
        "filter",
        str(bad),
        "--out",
        str(tmp_path / "o2"),
        "--flow",
        "raft",
        "--similarity",
        "hsv-hist",
        "--weights-dir",
        str(tmp_path / "w"),
    )
    assert code == 2 and "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in text
    ok = make_video("fine.mp4", 100)
    code, text = invoke("filter", str(ok), str(bad), "--out", str(tmp_path / "o3"), *weight_free)
    assert code == 0, text
    assert "error: not_a_video │ 1" in text


def test_cut_clips_hold_the_source_frames_at_the_documented_indices(tmp_path, make_video):
    path = make_video("long.mp4", 101, fps=24, dx=3, seed=3)
    out = tmp_path / "out"
    run_filter([str(path)], out, filter_config(), LOCAL)
    summary = run_cut(out, CutConfig(crf=0, preset="ultrafast"), LOCAL, WEIGHT_FREE)
    assert dict(summary.per_scale) == {s: 1 for s in (5, 9, 17, 33, 65, 81)}
    source = decode_all(path)
    rows = pq.read_table(out / "clips.parquet").to_pylist()
    assert [r["num_frames"] for r in rows] == [5, 9, 17, 33, 65, 81]
    for row in rows:
        s = row["num_frames"]
        assert row["clip_id"] == f"{row['video_id']}_{s:02d}"
        assert (row["start_frame"], row["end_frame"]) == (50 - s // 2, 50 + s // 2)
        clip = decode_all(out / row["clip_path"])
        assert len(clip) == s
        expected = source[row["start_frame"] : row["end_frame"] + 1]
        error = np.abs(clip.astype(int) - expected.astype(int)).mean(axis=(1, 2, 3))
        assert error.max() < 2.0  # crf 0: only the RGB<->YUV round trip
        neighbour = np.abs(clip[0].astype(int) - source[row["start_frame"] + 1].astype(int)).mean()
        assert neighbour > 3 * error[0] + 1  # an off-by-one index would be caught
        import cv2

        first = cv2.cvtColor(cv2.imread(str(out / row["first_frame_path"])), cv2.COLOR_BGR2RGB)
        last = cv2.cvtColor(cv2.imread(str(out / row["last_frame_path"])), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(first, source[row["start_frame"]])  # lossless condition images
        np.testing.assert_array_equal(last, source[row["end_frame"]])
        assert row["similarity_backend"] == "hsv-hist-cosine" and row["flow_score"] >= 0
        assert row["fps"] == 24.0 and not Path(row["clip_path"]).is_absolute()


def test_clip_scores_follow_the_clip_length(tmp_path, make_video):
    path = make_video("scores.mp4", 90, dx=0.5, width=192, height=128)
    out = tmp_path / "out"
    run_filter([str(path)], out, filter_config(), LOCAL)
    run_cut(
        out,
        CutConfig(frame_counts=(5, 17), preset="ultrafast"),
        LOCAL,
        ScoreConfig(similarity="hsv-hist", flow="dis", flow_width=192, flow_height=128),
    )
    short, long = pq.read_table(out / "clips.parquet").to_pylist()
    assert short["flow_score"] == pytest.approx(2.0, rel=0.35)  # 4 steps of 0.5 px
    assert long["flow_score"] == pytest.approx(8.0, rel=0.35)  # 16 steps of 0.5 px


def test_ray_executor_gives_the_same_manifests_as_local(tmp_path, make_video):
    inputs = [str(make_video(f"v{i}.mp4", 85 + 5 * i, dx=1 + i % 3, seed=i)) for i in range(5)]
    (tmp_path / "raw" / "bad.mp4").write_bytes(b"nope")
    inputs.append(str(tmp_path / "raw" / "bad.mp4"))
    config = filter_config(similarity=RangeConfig(low_quantile=0.1), flow=RangeConfig(high_quantile=0.9))
    run_filter(inputs, tmp_path / "local", config, RunConfig(executor="local"))
    run_filter(inputs, tmp_path / "ray", config, RunConfig(executor="ray", num_cpus=2, shard_size=2))
    local = pq.read_table(tmp_path / "local" / "videos.parquet").drop(["path"]).to_pylist()
    ray = pq.read_table(tmp_path / "ray" / "videos.parquet").drop(["path"]).to_pylist()
    assert local == ray
    assert sorted(r["status"] for r in local) == ["error", "ok", "ok", "ok", "rejected", "rejected"]


def test_ray_started_by_the_caller_is_left_running(tmp_path, make_video):
    import ray

    inputs = [str(make_video(f"v{i}.mp4", 85, seed=i)) for i in range(2)]
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        summary = run_filter(inputs, tmp_path / "out", filter_config(), RunConfig(executor="ray"))
        assert summary.processed == 2
        assert ray.is_initialized()
    finally:
        ray.shutdown()


def test_manifests_read_in_pandas_and_duckdb(tmp_path, make_video):
    import duckdb
    import pandas as pd

    out = tmp_path / "out"
    run_filter([str(make_video("d.mp4", 90))], out, filter_config(), LOCAL)
    run_cut(out, CutConfig(frame_counts=(5, 9), preset="ultrafast"), LOCAL, WEIGHT_FREE)
    frame = pd.read_parquet(out / "clips.parquet")
    assert list(frame["num_frames"]) == [5, 9]
    count = duckdb.sql(f"select count(*) from '{out / 'clips.parquet'}' where status = 'ok'").fetchall()[0][0]
    assert count == 2


def test_cut_without_filter_explains_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="sfi-data filter"):
        run_cut(tmp_path, CutConfig(), LOCAL, WEIGHT_FREE)


def test_nothing_readable_raises(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"x")
    with pytest.raises(NothingToDoError):
        run_filter([str(tmp_path / "x.mp4")], tmp_path / "out", filter_config(), LOCAL)


def test_odd_sized_video_is_cut_to_even_size(tmp_path):
    from sfi_data.synthetic import moving_texture_frames

    path = tmp_path / "odd.mkv"
    encode_video(moving_texture_frames(90, 99, 75), path, 24, pix_fmt="yuv444p", crf=0, preset="ultrafast")
    out = tmp_path / "out"
    run_filter([str(path)], out, filter_config(), LOCAL)
    run_cut(out, CutConfig(frame_counts=(5,), preset="ultrafast"), LOCAL, WEIGHT_FREE)
    (row,) = pq.read_table(out / "clips.parquet").to_pylist()
    assert row["status"] == "ok" and (row["width"], row["height"]) == (98, 74)


def test_config_file_settings_hold_unless_an_option_overrides_them(tmp_path, make_video):
    from typer.testing import CliRunner

    import sfi_data.commands.curate  # noqa: F401  (registers filter and cut)
    from sfi_data.app import app

    video = make_video("c.mp4", 100, dx=1)
    config = tmp_path / "settings.yaml"
    config.write_text(
        "filter:\n  score: {similarity: hsv-hist, flow: farneback, flow_width: 128, flow_height: 96}\n"
        "  meta: {min_frames: 90}\ncut:\n  frame_counts: [5, 9]\n  preset: ultrafast\n"
    )
    out = tmp_path / "out"
    base = ["--out", str(out), "--config", str(config), "--executor", "local"]
    result = CliRunner().invoke(app, ["filter", str(video), *base, "--flow", "dis"])
    assert result.exit_code == 0, result.output
    (row,) = pq.read_table(out / "videos.parquet").to_pylist()
    assert row["similarity_backend"] == "hsv-hist-cosine"  # from the file
    assert row["flow_backend"] == "opencv-dis" and row["flow_work_size"] == "128x96"  # option wins, rest kept
    result = CliRunner().invoke(app, ["cut", *base, "--reader", "decord"])
    assert result.exit_code == 0, result.output
    clips = pq.read_table(out / "clips.parquet").to_pylist()
    assert [c["num_frames"] for c in clips] == [5, 9] and "preset=ultrafast" in clips[0]["encoder"]
    assert clips[0]["similarity_backend"] == "hsv-hist-cosine"
