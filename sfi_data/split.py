"""The SFIBench split: a seeded choice of source videos with every scale is the test set, the rest trains."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sfi_core.constants import FRAME_COUNTS
from sfi_core.dataset import load_manifest_rows
from sfi_core.manifest import atomic_path, write_rows
from sfi_core.schemas import SCHEMA_VERSION, SPLIT

TEST_MANIFEST = "test.parquet"
TRAIN_MANIFEST = "train.parquet"
SPLIT_RECORD = "split.json"


@dataclass
class SplitConfig:
    """Section 3.3.2: 100 videos x all 6 scales = 600 test clips."""

    num_videos: int = 100
    seed: int = 0
    scales: tuple[int, ...] = FRAME_COUNTS
    # With fewer eligible videos than asked: take them all (True) or stop with an error (False).
    allow_fewer: bool = False


@dataclass
class SplitResult:
    test_videos: list[str]
    num_eligible_videos: int
    num_test_clips: int
    num_train_clips: int
    num_excluded_clips: int  # clips of test videos' sources at scales outside the test set
    config: dict = field(default_factory=dict)


class NotEnoughVideosError(ValueError):
    """Fewer source videos have every scale than the test set asks for."""


def _source_groups(root: Path) -> dict[str, str]:
    """video_id -> the source it came from, so segments of one file never straddle the split."""
    videos = root / "videos.parquet"
    if not videos.exists():
        return {}
    table = pq.read_table(videos, columns=["video_id", "source"]).to_pylist()
    return {row["video_id"]: row["source"] or row["video_id"] for row in table}


def eligible_videos(clips: list[dict], scales: tuple[int, ...]) -> list[str]:
    """Video ids with a usable clip at every scale, sorted (the seeded choice depends on this order)."""
    have: dict[str, set[int]] = defaultdict(set)
    for row in clips:
        have[row["video_id"]].add(int(row["num_frames"]))
    wanted = set(scales)
    return sorted(video for video, got in have.items() if wanted <= got)


def choose_test_videos(eligible: list[str], config: SplitConfig) -> list[str]:
    if config.num_videos < 1:
        raise ValueError(f"num_videos must be >= 1, got {config.num_videos}")
    if len(eligible) < config.num_videos:
        if not config.allow_fewer:
            raise NotEnoughVideosError(
                f"only {len(eligible)} source video(s) have clips at every scale {list(config.scales)}, "
                f"the test set asks for {config.num_videos}; pass --num-videos {len(eligible)} or --allow-fewer"
            )
        return list(eligible)
    rng = np.random.default_rng(config.seed)
    picked = rng.choice(len(eligible), size=config.num_videos, replace=False)
    return sorted(eligible[i] for i in picked)


def split_rows(
    clips: list[dict], groups: dict[str, str], config: SplitConfig
) -> tuple[list[dict], list[dict], SplitResult]:
    """Clip rows (status ok, with `caption`) to (test rows, train rows, result)."""
    eligible = eligible_videos(clips, config.scales)
    test_videos = choose_test_videos(eligible, config)
    chosen = set(test_videos)
    test_sources = {groups.get(video, video) for video in chosen}
    wanted_scales = set(config.scales)
    test, train, excluded = [], [], 0
    taken: set[tuple[str, int]] = set()
    for row in sorted(clips, key=lambda r: (r["video_id"], int(r["num_frames"]), r["clip_id"])):
        scale_key = (row["video_id"], int(row["num_frames"]))
        if row["video_id"] in chosen and int(row["num_frames"]) in wanted_scales and scale_key not in taken:
            taken.add(scale_key)
            test.append(row | {"split": "test"})
        elif groups.get(row["video_id"], row["video_id"]) in test_sources:
            excluded += 1  # a test video's other clips (or another segment of its file): never trained on
        else:
            train.append(row | {"split": "train"})
    result = SplitResult(
        test_videos=test_videos,
        num_eligible_videos=len(eligible),
        num_test_clips=len(test),
        num_train_clips=len(train),
        num_excluded_clips=excluded,
        config=asdict(config) | {"scales": list(config.scales)},
    )
    return test, train, result


def _to_split_row(row: dict) -> dict:
    names = set(SPLIT.names)
    return {key: value for key, value in row.items() if key in names} | {"schema_version": SCHEMA_VERSION}


def run_split(out_dir: Path, config: SplitConfig, clips_path: Path | None = None) -> SplitResult:
    """Write DIR/test.parquet, DIR/train.parquet and DIR/split.json from DIR/clips.parquet (+ captions)."""
    out_dir = Path(out_dir)
    clips = load_manifest_rows(clips_path or out_dir / "clips.parquet")
    test, train, result = split_rows(clips, _source_groups(out_dir), config)
    write_rows([_to_split_row(r) for r in test], SPLIT, out_dir / TEST_MANIFEST)
    write_rows([_to_split_row(r) for r in train], SPLIT, out_dir / TRAIN_MANIFEST)
    with atomic_path(out_dir / SPLIT_RECORD) as tmp:
        tmp.write_text(json.dumps(asdict(result) | {"schema_version": SCHEMA_VERSION}, indent=2) + "\n")
    return result
