"""The SFIBench split: seeded, complete videos only, no leaks into train."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import typer
from click.testing import CliRunner

from sfi_core.constants import FRAME_COUNTS
from sfi_core.manifest import write_rows
from sfi_core.schemas import CAPTIONS, SPLIT, STATUS_OK, VIDEOS, empty_row
from sfi_data.split import NotEnoughVideosError, SplitConfig, run_split
from sfi_data.testing.toy_dataset import build_toy_dataset


@pytest.fixture()
def root(tmp_path):
    build_toy_dataset(tmp_path, num_videos=30, incomplete_videos=5, write_media=False)
    return tmp_path


def test_six_scales_per_test_video_and_no_leak(root):
    result = run_split(root, SplitConfig(num_videos=10, seed=7))
    test = pq.read_table(root / "test.parquet")
    train = pq.read_table(root / "train.parquet")
    assert test.schema.equals(SPLIT, check_metadata=False)
    assert result.num_eligible_videos == 30
    assert test.num_rows == 60 == result.num_test_clips
    test_rows = test.to_pylist()
    per_video = {}
    for row in test_rows:
        per_video.setdefault(row["video_id"], []).append(row["num_frames"])
    assert len(per_video) == 10
    assert all(sorted(scales) == list(FRAME_COUNTS) for scales in per_video.values())
    train_videos = set(train.column("video_id").to_pylist())
    assert not train_videos & set(per_video)
    # Everything else trains, the incomplete videos included (they cannot be tested).
    assert train.num_rows == 20 * 6 + 5 * 5
    assert {"vid0030", "vid0034"} <= train_videos
    assert set(train.column("split").to_pylist()) == {"train"}
    record = json.loads((root / "split.json").read_text())
    assert record["test_videos"] == sorted(per_video) and record["config"]["seed"] == 7


def test_reproducible_from_seed(root, tmp_path):
    first = run_split(root, SplitConfig(num_videos=10, seed=3)).test_videos
    again = run_split(root, SplitConfig(num_videos=10, seed=3)).test_videos
    other = run_split(root, SplitConfig(num_videos=10, seed=4)).test_videos
    assert first == again
    assert first != other


def test_segments_of_one_source_never_straddle(root):
    # Two segments of the same file: if one is tested, the other must not train.
    videos = pq.read_table(root / "videos.parquet").to_pylist()
    for row in videos:
        if row["video_id"] in ("vid0000", "vid0001"):
            row["source"] = "same_file.mp4"
    write_rows(videos, VIDEOS, root / "videos.parquet")
    for seed in range(20):
        result = run_split(root, SplitConfig(num_videos=10, seed=seed))
        tested = set(result.test_videos)
        if len(tested & {"vid0000", "vid0001"}) == 1:
            break
    else:
        pytest.fail("no seed picked exactly one of the two segments")
    train_videos = set(pq.read_table(root / "train.parquet").column("video_id").to_pylist())
    assert not train_videos & {"vid0000", "vid0001"}
    assert result.num_excluded_clips == 6


def test_captions_are_joined(root):
    clips = pq.read_table(root / "clips.parquet").to_pylist()
    write_rows(
        [
            empty_row(CAPTIONS)
            | {"clip_id": c["clip_id"], "status": STATUS_OK, "caption": "a " + c["clip_id"]}
            for c in clips
        ],
        CAPTIONS,
        root / "captions.parquet",
    )
    run_split(root, SplitConfig(num_videos=5))
    for row in pq.read_table(root / "test.parquet").to_pylist():
        assert row["caption"] == "a " + row["clip_id"]


def test_not_enough_videos_says_what_to_do(root):
    with pytest.raises(NotEnoughVideosError, match="--num-videos 30"):
        run_split(root, SplitConfig(num_videos=100))
    result = run_split(root, SplitConfig(num_videos=100, allow_fewer=True))
    assert len(result.test_videos) == 30


def test_cli(root):
    from sfi_data.app import app
    from sfi_data.commands import split as _split  # noqa: F401 - registers the command

    runner = CliRunner()
    group = typer.main.get_group(app)  # a group even while only one command is registered
    outcome = runner.invoke(group, ["split", "--out", str(root), "--num-videos", "4", "--seed", "1"])
    assert outcome.exit_code == 0, outcome.output
    assert pq.read_table(root / "test.parquet").num_rows == 24
    outcome = runner.invoke(group, ["split", "--out", str(root), "--num-videos", "400"])
    assert outcome.exit_code == 2
    assert "--allow-fewer" in outcome.output
