"""Driver side of `sfi-data filter` and `sfi-data cut`: plan shards, run them, merge, write manifests.

Every stage writes one part file per shard under DIR/work/<stage>/ (atomically), so a run killed at any
moment resumes where it stopped; the final manifest is always rebuilt from the parts, in input order,
one row per key, and written atomically.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sfi_data.config import CutConfig, FilterStageConfig, RunConfig, ScoreConfig, to_dict
from sfi_data.discover import discover
from sfi_data.executors import make_executor
from sfi_data.executors.base import ShardResult, plan_shards
from sfi_data.manifest import merge_parts, read_rows, write_rows
from sfi_data.schemas import CLIPS, STATUS_OK, VIDEOS
from sfi_data.scoring import PairScorer
from sfi_data.stages.base import Stage
from sfi_data.stages.chain import Chain
from sfi_data.stages.cut import CutStage, clip_id_for
from sfi_data.stages.meta_filter import MetaFilterStage
from sfi_data.stages.probe import ProbeStage
from sfi_data.stages.score import FirstLastScoreStage
from sfi_data.stages.thresholds import apply_thresholds

log = logging.getLogger("sfi_data")

VIDEOS_MANIFEST = "videos.parquet"
CLIPS_MANIFEST = "clips.parquet"
LOG_FILE = "sfi-data.log"

# Progress reporting: called with (done_inputs, total_inputs) after each shard.
Progress = Callable[[int, int], None]


class NothingToDoError(RuntimeError):
    """No input could be processed (the CLI exits non-zero)."""


@dataclass
class StageSummary:
    stage: str
    total: int = 0
    skipped: int = 0  # finished in an earlier run
    processed: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)  # "status: reason pattern" -> count
    per_scale: Counter = field(default_factory=Counter)  # cut only: ok clips per scale
    thresholds: dict = field(default_factory=dict)

    @property
    def items_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


def reason_kind(reason: str | None) -> str:
    """Group reasons that differ only by numbers or file names (for the summary table)."""
    if not reason:
        return ""
    text = re.sub(r"(/|\\)[^\s:]+", "<path>", reason)
    return re.sub(r"\d+(\.\d+)?", "#", text)


def setup_logging(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = str((out_dir / LOG_FILE).resolve())
    root = logging.getLogger()
    if not any(getattr(h, "baseFilename", None) == target for h in root.handlers):
        handler = logging.FileHandler(target, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def remove_stale_temporaries(out_dir: Path) -> int:
    """Temporary files left by a killed run (atomic writes name them .NAME.*.tmp)."""
    removed = 0
    for dirpath, _, files in os.walk(out_dir):
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                os.unlink(os.path.join(dirpath, name))
                removed += 1
    return removed


def run_stage(
    stage: Stage, rows: list[dict], out_dir: Path, schema, run: RunConfig, progress: Progress | None = None
) -> StageSummary:
    """Run `stage` over `rows` (skipping keys finished earlier) and return the counts."""
    parts_dir = out_dir / "work" / stage.name
    if run.overwrite and parts_dir.exists():
        shutil.rmtree(parts_dir)
    shards, skipped = plan_shards(rows, stage.key, parts_dir, run.shard_size)
    summary = StageSummary(stage.name, total=len(rows), skipped=skipped)
    start = time.perf_counter()
    done = skipped
    if progress:
        progress(done, len(rows))
    if shards:
        executor = make_executor(
            run.executor, address=run.address, num_cpus=run.num_cpus, num_gpus=run.num_gpus
        )
        try:
            result: ShardResult
            for result in executor.map_shards(stage, shards, schema):
                summary.processed += result.inputs
                done += result.inputs
                if progress:
                    progress(done, len(rows))
        finally:
            executor.close()
    summary.seconds = time.perf_counter() - start
    log.info(
        "%s: %d inputs, %d done earlier, %d processed in %.1f s",
        stage.name,
        len(rows),
        skipped,
        summary.processed,
        summary.seconds,
    )
    return summary


def gpu_share(score: ScoreConfig | None, run: RunConfig) -> float:
    """GPUs one worker of a scoring stage asks Ray for: the --gpus-per-worker share, or a whole GPU for cuda."""
    if score is None or not (score.device == "cuda" or (run.num_gpus or 0) > 0):
        return 0.0
    return min(1.0, run.num_gpus or 1.0)


def count(summary: StageSummary, rows: list[dict]) -> StageSummary:
    for row in rows:
        summary.statuses[row["status"]] += 1
        if row["status"] != STATUS_OK:
            summary.reasons[f"{row['status']}: {reason_kind(row.get('reason'))}"] += 1
    return summary


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
