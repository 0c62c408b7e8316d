"""The SFIBench split: a seeded choice of source videos with every scale is the test set, the rest trains.

Segments of one file and near-duplicate footage (re-encodes, resizes, crops: sfi_data.near_dup) form
one group, and a group stays whole on one side: a tested video's group never trains.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sfi_core.clips import read_clip_manifest
from sfi_core.config import ExecutionConfig
from sfi_core.constants import STATUS_OK
from sfi_core.manifest import atomic_path, write_rows
from sfi_core.manifest_table import merge_parts
from sfi_core.schemas import SCHEMA_VERSION, SPLIT
from sfi_data.categorize import categories_for
from sfi_data.config_dataset import SplitConfig, resolve_reader, settings_changed
from sfi_data.near_dup import FRAME_HASHES, FrameHashStage, group_videos

log = logging.getLogger(__name__)

TEST_MANIFEST = "test.parquet"
TRAIN_MANIFEST = "train.parquet"
SPLIT_RECORD = "split.json"


@dataclass
class SplitResult:
    test_videos: list[str]
    num_eligible_videos: int
    num_test_clips: int
    num_train_clips: int
    num_excluded_clips: int  # other clips of the tested groups (other scales, segments, near-duplicates)
    config: dict = field(default_factory=dict)
    num_eligible_groups: int = 0  # eligible videos once near-duplicates and segments count once
    near_duplicate_groups: list[list[str]] = field(default_factory=list)  # found by the frame hashes
    unhashed_videos: list[str] = field(default_factory=list)  # frames unreadable: grouped by source only
    test_categories: dict[str, int] = field(default_factory=dict)  # category -> test videos


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


def one_per_group(eligible: list[str], groups: dict[str, str]) -> list[str]:
    """The first eligible video of each group: near-duplicates must not fill the test set twice."""
    seen: set[str] = set()
    chosen = []
    for video in eligible:
        group = groups.get(video, video)
        if group not in seen:
            seen.add(group)
            chosen.append(video)
    return chosen


def stratified_counts(strata: dict[str, list[str]], total: int) -> dict[str, int]:
    """Videos to draw per stratum: proportional to its size, largest remainders first (ties by name)."""
    size = sum(len(v) for v in strata.values())
    exact = {name: total * len(videos) / size for name, videos in strata.items()}
    counts = {name: int(share) for name, share in exact.items()}
    order = sorted(strata, key=lambda name: (-(exact[name] - counts[name]), name))
    for name in order[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def choose_test_videos(
    eligible: list[str], config: SplitConfig, video_category: dict[str, str] | None = None
) -> list[str]:
    """The seeded choice; with `stratify: category` one draw per category, sized by its share."""
    if config.num_videos < 1:
        raise ValueError(f"num_videos must be >= 1, got {config.num_videos}")
    if len(eligible) < config.num_videos:
        if not config.allow_fewer:
            raise NotEnoughVideosError(
                f"only {len(eligible)} source video(s) (near-duplicates counted once) have clips at every "
                f"scale {list(config.scales)}, the test set asks for {config.num_videos}; "
                f"pass --num-videos {len(eligible)} or --allow-fewer"
            )
        return list(eligible)
    rng = np.random.default_rng(config.seed)
    if config.stratify is None:
        picked = rng.choice(len(eligible), size=config.num_videos, replace=False)
        return sorted(eligible[i] for i in picked)
    strata: dict[str, list[str]] = defaultdict(list)
    for video in eligible:
        strata[(video_category or {}).get(video, "other")].append(video)
    chosen: list[str] = []
    for name, count in sorted(stratified_counts(strata, config.num_videos).items()):
        members = strata[name]
        chosen += [members[i] for i in rng.choice(len(members), size=count, replace=False)]
    return sorted(chosen)


def video_categories(clips: list[dict]) -> dict[str, str]:
    """video_id -> the category of its longest clip (the most footage, the richest caption)."""
    longest: dict[str, dict] = {}
    for row in clips:
        held = longest.get(row["video_id"])
        if held is None or (int(row["num_frames"]), row["clip_id"]) > (
            int(held["num_frames"]),
            held["clip_id"],
        ):
            longest[row["video_id"]] = row
    return {video: row.get("category") or "other" for video, row in longest.items()}


def split_rows(
    clips: list[dict], groups: dict[str, str], config: SplitConfig
) -> tuple[list[dict], list[dict], SplitResult]:
    """Clip rows (status ok, with `caption`) to (test rows, train rows, result); `groups`: video -> group."""
    eligible = eligible_videos(clips, config.scales)
    representatives = one_per_group(eligible, groups)
    test_videos = choose_test_videos(representatives, config, video_categories(clips))
    chosen = set(test_videos)
    test_groups = {groups.get(video, video) for video in chosen}
    wanted_scales = set(config.scales)
    test, train, excluded = [], [], 0
    taken: set[tuple[str, int]] = set()
    for row in sorted(clips, key=lambda r: (r["video_id"], int(r["num_frames"]), r["clip_id"])):
        scale_key = (row["video_id"], int(row["num_frames"]))
        if row["video_id"] in chosen and int(row["num_frames"]) in wanted_scales and scale_key not in taken:
            taken.add(scale_key)
            test.append(row | {"split": "test"})
        elif groups.get(row["video_id"], row["video_id"]) in test_groups:
            excluded += 1  # another clip of a tested group (scale, segment, near-duplicate): never trained on
        else:
            train.append(row | {"split": "train"})
    result = SplitResult(
        test_videos=test_videos,
        num_eligible_videos=len(eligible),
        num_test_clips=len(test),
        num_train_clips=len(train),
        num_excluded_clips=excluded,
        config=asdict(config) | {"scales": list(config.scales)},
        num_eligible_groups=len(representatives),
    )
    return test, train, result


def hash_rows(clips: list[dict]) -> list[dict]:
    """One row per video: its longest clip, whose frames get hashed."""
    longest: dict[str, dict] = {}
    for row in clips:
        held = longest.get(row["video_id"])
        if held is None or int(row["num_frames"]) > int(held["num_frames"]):
            longest[row["video_id"]] = row
    return [longest[video] for video in sorted(longest)]


def frame_hashes(
    out_dir: Path, clips: list[dict], config: SplitConfig, run: ExecutionConfig | None = None
) -> tuple[dict[str, np.ndarray], list[str]]:
    """video_id -> uint64 frame hashes (by the shared driver, resumable), and the videos that failed."""
    from sfi_core.driver import run_stage

    stage = FrameHashStage(out_dir, config.hash_frames, resolve_reader(out_dir, config.reader))
    run = (run or ExecutionConfig()).for_step(stage.shard_size, settings_changed(out_dir, stage))
    rows = hash_rows(clips)
    run_stage(stage, rows, out_dir, FRAME_HASHES, run)
    merged = merge_parts(
        out_dir / "work" / stage.name, FRAME_HASHES, "video_id", [r["video_id"] for r in rows]
    )
    hashes = {
        r["video_id"]: np.asarray(r["frame_hashes"], dtype=np.uint64)
        for r in merged
        if r["status"] == STATUS_OK
    }
    failed = [r["video_id"] for r in merged if r["status"] != STATUS_OK]
    for row in merged:
        if row["status"] != STATUS_OK:
            log.warning("split: %s is grouped by its source only: %s", row["video_id"], row["reason"])
    return hashes, failed


def _to_split_row(row: dict) -> dict:
    names = set(SPLIT.names)
    return {key: value for key, value in row.items() if key in names} | {"schema_version": SCHEMA_VERSION}


def run_split(
    out_dir: Path, config: SplitConfig, clips_path: Path | None = None, run: ExecutionConfig | None = None
) -> SplitResult:
    """Write DIR/test.parquet, DIR/train.parquet and DIR/split.json from DIR/clips.parquet (+ captions).

    `run`: the executor and its resources, for hashing the frames."""
    out_dir = Path(out_dir)
    clips_path = Path(clips_path or out_dir / "clips.parquet")
    if not clips_path.is_file():
        raise FileNotFoundError(f"{clips_path} not found: run `sfi-data cut --out {out_dir}` first")
    if "clip_id" not in pq.read_schema(clips_path).names:
        raise ValueError(f"{clips_path} is not a clips manifest (no clip_id column): give DIR/clips.parquet")
    clips = read_clip_manifest(clips_path)
    if config.stratify not in (None, "category"):
        raise ValueError(f"stratify {config.stratify!r} is not supported; the one choice is 'category'")
    categories = categories_for(out_dir, clips)
    clips = [
        row | dict(zip(("category", "category_source"), categories[row["clip_id"]], strict=True))
        for row in clips
    ]
    hashes, unhashed = frame_hashes(out_dir, clips, config, run) if config.near_duplicates else ({}, [])
    videos = {row["video_id"] for row in clips}
    groups, near = group_videos(videos, _source_groups(out_dir), hashes, config.hash_max_distance)
    test, train, result = split_rows(clips, groups, config)
    result.near_duplicate_groups, result.unhashed_videos = near, unhashed
    result.test_categories = dict(sorted(Counter(video_categories(test).values()).items()))
    write_rows([_to_split_row(r) for r in test], SPLIT, out_dir / TEST_MANIFEST)
    write_rows([_to_split_row(r) for r in train], SPLIT, out_dir / TRAIN_MANIFEST)
    with atomic_path(out_dir / SPLIT_RECORD) as tmp:
        tmp.write_text(json.dumps(asdict(result) | {"schema_version": SCHEMA_VERSION}, indent=2) + "\n")
    return result
