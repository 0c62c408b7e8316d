"""Driver side of `sfi-data filter` and `sfi-data cut`: plan shards, run them, merge, write manifests.

Every stage writes one part file per shard under DIR/work/<stage>/ (atomically), so a run killed at any
moment resumes where it stopped; the final manifest is always rebuilt from the parts, in input order,
one row per key, and written atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sfi_core.driver import (  # noqa: F401 - re-exported for the CLI
    LOG_FILE,
    NothingToDoError,
    Progress,
    StageSummary,
    count,
    reason_kind,
    remove_stale_temporaries,
    run_stage,
    setup_logging,
)
from sfi_core.manifest import merge_parts, read_rows, write_rows
from sfi_core.schemas import CLIPS, STATUS_OK, VIDEOS
from sfi_core.stage import Chain
from sfi_data.config import CutConfig, FilterStageConfig, RunConfig, ScoreConfig, to_dict
from sfi_data.discover import discover
from sfi_data.scoring import PairScorer
from sfi_data.stages.cut import CutStage, clip_id_for
from sfi_data.stages.meta_filter import MetaFilterStage
from sfi_data.stages.probe import ProbeStage
from sfi_data.stages.score import FirstLastScoreStage
from sfi_data.stages.thresholds import apply_thresholds

log = logging.getLogger("sfi_data")

VIDEOS_MANIFEST = "videos.parquet"
CLIPS_MANIFEST = "clips.parquet"


def gpu_share(score: ScoreConfig | None, run: RunConfig) -> float:
    """GPUs one worker of a scoring stage asks Ray for: the --gpus-per-worker share, or a whole GPU for cuda."""
    if score is None or not (score.device == "cuda" or (run.num_gpus or 0) > 0):
        return 0.0
    return min(1.0, run.num_gpus or 1.0)


def run_filter(
    inputs: list[str],
    out_dir: Path,
    config: FilterStageConfig | None = None,
    run: RunConfig | None = None,
    weights_dir: str | None = None,
    list_files: list[str] | None = None,
    progress: Progress | None = None,
    videos: list[dict] | None = None,
) -> StageSummary:
    """Discover, probe, meta-filter and score every input, then apply thresholds; write videos.parquet.

    `videos` may hand in ready input rows (e.g. virtual scene segments) instead of paths to discover.
    """
    config = config or FilterStageConfig()
    run = run or RunConfig()
    out_dir = Path(out_dir)
    setup_logging(out_dir)
    remove_stale_temporaries(out_dir)
    rows = videos if videos is not None else discover(inputs, out_dir, list_files or [])
    if not rows:
        raise NothingToDoError(f"no inputs found in {inputs}")
    log.info("filter: %d inputs; settings %s", len(rows), to_dict(config))
    scorer = PairScorer(config.score, weights_dir)
    scorer.check_weights()
    stage = Chain(
        [
            ProbeStage(out_dir, config.probe),
            MetaFilterStage(config.meta),
            FirstLastScoreStage(out_dir, config.score, weights_dir),
        ]
    )
    stage.name = "filter"
    stage.num_gpus = gpu_share(config.score, run)
    summary = run_stage(stage, rows, out_dir, VIDEOS, run, progress)
    merged = merge_parts(out_dir / "work" / stage.name, VIDEOS, "video_id", [r["video_id"] for r in rows])
    if len(merged) != len(rows):
        raise RuntimeError(f"internal error: {len(rows) - len(merged)} inputs have no row after the filter")
    bounds = apply_thresholds(merged, config.thresholds)
    summary.thresholds = {name: (b.low, b.high, b.mode) for name, b in bounds.items()}
    write_rows(merged, VIDEOS, out_dir / VIDEOS_MANIFEST)
    count(summary, merged)
    if summary.statuses.get("error", 0) == len(merged):
        raise NothingToDoError(
            f"none of the {len(merged)} inputs could be read; see {out_dir / VIDEOS_MANIFEST}"
        )
    return summary


def run_cut(
    out_dir: Path,
    config: CutConfig | None = None,
    run: RunConfig | None = None,
    score: ScoreConfig | None = None,
    weights_dir: str | None = None,
    progress: Progress | None = None,
) -> StageSummary:
    """Cut the centred clips of every scale from each kept video of videos.parquet; write clips.parquet."""
    config = config or CutConfig()
    run = run or RunConfig()
    out_dir = Path(out_dir)
    setup_logging(out_dir)
    manifest = out_dir / VIDEOS_MANIFEST
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} not found: run `sfi-data filter INPUT... --out {out_dir}` first")
    remove_stale_temporaries(out_dir)
    kept = [row for row in read_rows(manifest) if row["status"] == STATUS_OK]
    if not kept:
        raise NothingToDoError(f"no video passed the filter in {manifest}")
    if score is not None and config.score_clips:
        PairScorer(score, weights_dir).check_weights()
    stage = CutStage(out_dir, config, score, weights_dir)
    stage.num_gpus = gpu_share(score, run)
    summary = run_stage(stage, kept, out_dir, CLIPS, run, progress)
    wanted = [clip_id_for(v["video_id"], s) for v in kept for s in sorted(config.frame_counts)]
    merged = merge_parts(out_dir / "work" / stage.name, CLIPS, "clip_id", wanted)
    write_rows(merged, CLIPS, out_dir / CLIPS_MANIFEST)
    count(summary, merged)
    for row in merged:
        if row["status"] == STATUS_OK:
            summary.per_scale[row["num_frames"]] += 1
    return summary
