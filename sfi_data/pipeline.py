"""Driver side of `sfi-data filter` and `sfi-data cut`: build the stages, run them, merge, write manifests.

Every stage writes one part file per shard under DIR/work/<stage>/ (atomically), next to the settings
that shaped them, so a run killed at any moment resumes where it stopped and a rerun with other
settings is refused; the final manifest is always rebuilt from the parts, in input order, and written
atomically. `cut` scores its clips with the backends the filter recorded unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfi_core.constants import STATUS_OK
from sfi_core.driver import (
    NothingToDoError,
    Progress,
    StageSummary,
    count_table,
    recorded_settings,
    remove_stale_temporaries,
    run_stage,
    setup_logging,
)
from sfi_core.executors.streaming import SplitChain
from sfi_core.manifest import read_rows
from sfi_core.manifest_table import PartsMerge
from sfi_core.schemas import CLIPS, VIDEOS
from sfi_data.config import CutConfig, FilterStageConfig, RunConfig, ScoreConfig, to_dict, validate
from sfi_data.discover import skipped_note
from sfi_data.discover_table import discover_table
from sfi_data.scoring import PairScorer
from sfi_data.stages.cut import CutStage
from sfi_data.stages.fetch import FirstLastFetchStage
from sfi_data.stages.meta_filter import MetaFilterStage
from sfi_data.stages.probe import ProbeStage
from sfi_data.stages.score import FirstLastScoreStage
from sfi_data.stages.thresholds import BOUNDS_COLUMNS, apply_bounds_table, bounds_table, small_corpus_warning

log = logging.getLogger("sfi_data")


@dataclass
class CurationSummary(StageSummary):
    """The driver's counts plus what only the curation stages report."""

    per_scale: Counter = field(default_factory=Counter)  # cut: ok clips per scale
    thresholds: dict = field(default_factory=dict)  # filter: score -> (low, high, how chosen)

    @classmethod
    def of(cls, summary: StageSummary) -> CurationSummary:
        return cls(**{f.name: getattr(summary, f.name) for f in dataclasses.fields(StageSummary)})


VIDEOS_MANIFEST = "videos.parquet"
CLIPS_MANIFEST = "clips.parquet"
FILTER_STAGE = "filter"


def gpu_share(score: ScoreConfig | None, run: RunConfig) -> float:
    """GPUs one worker of a scoring stage asks Ray for: the --gpus-per-worker share, or a whole GPU for cuda."""
    if score is None or not (score.device == "cuda" or (run.num_gpus or 0) > 0):
        return 0.0
    return min(1.0, run.num_gpus or 1.0)


def filter_stage(out_dir: Path, config: FilterStageConfig, weights_dir: str | None = None) -> SplitChain:
    """Probe -> meta filter -> first/last fetch -> scores, one stage named "filter"; streamed, the first
    three run in CPU tasks while GPU actors score (sfi_core.executors.streaming)."""
    stage = SplitChain(
        [
            ProbeStage(out_dir, config.probe),
            MetaFilterStage(config.meta),
            FirstLastFetchStage(out_dir, config.score.reader, config.meta),
            FirstLastScoreStage(out_dir, config.score, weights_dir),
        ],
        split=3,
    )
    stage.name = FILTER_STAGE
    return stage


def run_filter(
    inputs: list[str],
    out_dir: Path,
    config: FilterStageConfig | None = None,
    run: RunConfig | None = None,
    weights_dir: str | None = None,
    list_files: list[str] | None = None,
    progress: Progress | None = None,
    videos: list[dict] | None = None,
) -> CurationSummary:
    """Discover, probe, meta-filter and score every input, then apply thresholds; write videos.parquet.

    `videos` may hand in ready input rows (e.g. virtual scene segments) instead of paths to discover.
    Discovered inputs, the merge, the thresholds and the counts stay in Arrow (no row dicts).
    """
    config = validate(config or FilterStageConfig())
    run = validate(run or RunConfig())
    out_dir = Path(out_dir)
    setup_logging(out_dir)
    remove_stale_temporaries(out_dir)
    not_video: Counter = Counter()
    rows = videos if videos is not None else discover_table(inputs, out_dir, list_files or [], not_video)
    skipped = skipped_note(not_video)
    if skipped:
        log.info("filter: %s", skipped)
    if isinstance(rows, pa.Table):
        total, wanted = rows.num_rows, rows.column("video_id")
    else:
        total, wanted = len(rows), pa.array([row["video_id"] for row in rows], pa.string())
    if not total:
        raise NothingToDoError(f"no inputs found in {inputs}")
    log.info("filter: %d inputs; settings %s", total, to_dict(config))
    PairScorer(config.score, weights_dir).check_weights()
    stage = filter_stage(out_dir, config, weights_dir)
    stage.num_gpus = gpu_share(config.score, run)
    stage.streamed = stage.num_gpus > 0  # without a GPU, a whole chain per CPU is faster
    summary = CurationSummary.of(run_stage(stage, rows, out_dir, VIDEOS, run, progress))
    if skipped:
        summary.warnings.append(skipped)
    del rows
    # The bounds need every row's scores, so they come from the merge's few columns they use; then
    # videos.parquet is written batch by batch with those bounds (rows are thresholded independently).
    merge = PartsMerge(out_dir / "work" / stage.name, VIDEOS, "video_id", wanted, columns=BOUNDS_COLUMNS)
    if len(merge) != total:
        raise RuntimeError(f"internal error: {total - len(merge)} inputs have no row after the filter")
    bounds = bounds_table(merge.kept, config.thresholds)
    summary.thresholds = {name: (b.low, b.high, b.mode) for name, b in bounds.items()}
    warning = small_corpus_warning(bounds)
    if warning:
        summary.warnings.append(warning)
        log.warning("filter: %s", warning)
    merge.write(
        out_dir / VIDEOS_MANIFEST,
        transform=lambda batch: apply_bounds_table(batch, bounds),
        each=lambda batch: count_table(summary, batch),
    )
    if summary.statuses.get("error", 0) == total:
        errors = pq.ParquetFile(out_dir / VIDEOS_MANIFEST).read(columns=["reason_code", "reason"])
        codes = ", ".join(
            sorted({code or "unknown" for code in pc.unique(errors.column("reason_code")).to_pylist()})
        )
        first = errors.column("reason")[0].as_py()
        raise NothingToDoError(
            f"none of the {total} inputs could be read ({codes}; first: {first}); "
            f"see {out_dir / VIDEOS_MANIFEST}"
        )
    return summary


# Backend names the scorers write into videos.parquet -> the ScoreConfig settings that produce them
# (for a dataset filtered before settings were recorded next to the parts).
def _score_from_backends(similarity: str | None, flow: str | None) -> dict:
    found: dict = {}
    if similarity == "hsv-hist-cosine":
        found["similarity"] = "hsv-hist"
    elif similarity and similarity.startswith("clip:"):
        model, _, pretrained = similarity.removeprefix("clip:").partition("/")
        found |= {"similarity": "clip", "clip_model": model, "clip_pretrained": pretrained}
    if flow and flow.startswith("opencv-"):
        found["flow"] = flow.removeprefix("opencv-")
    elif flow and flow.startswith("raft:"):
        found |= {"flow": "raft", "raft_model": flow.removeprefix("raft:")}
    return found


def filter_score_settings(out_dir: Path) -> dict:
    """The scoring settings the filter recorded in `out_dir` (settings.json, else videos.parquet), or {}."""
    recorded = (recorded_settings(out_dir, FILTER_STAGE) or {}).get("score")
    if recorded:
        return {key: value for key, value in recorded.items() if key != "weights"}
    manifest = Path(out_dir) / VIDEOS_MANIFEST
    if manifest.exists():
        for row in read_rows(manifest):
            if row.get("similarity_backend") or row.get("flow_backend"):
                return _score_from_backends(row.get("similarity_backend"), row.get("flow_backend"))
    return {}


def filter_score_config(out_dir: Path) -> ScoreConfig:
    """ScoreConfig as the filter of `out_dir` used it (the defaults where it recorded nothing)."""
    known = {f.name for f in dataclasses.fields(ScoreConfig)}
    recorded = filter_score_settings(out_dir)
    return ScoreConfig(**{key: value for key, value in recorded.items() if key in known})


def run_cut(
    out_dir: Path,
    config: CutConfig | None = None,
    run: RunConfig | None = None,
    score: ScoreConfig | None = None,
    weights_dir: str | None = None,
    progress: Progress | None = None,
) -> CurationSummary:
    """Cut the centred clips of every scale from each kept video of videos.parquet; write clips.parquet.

    `score` None scores the clips with the backends the filter recorded; `config.reader` None reads
    frames with the filter's reader.
    """
    config = validate(config or CutConfig())
    run = validate(run or RunConfig())
    out_dir = Path(out_dir)
    setup_logging(out_dir)
    manifest = out_dir / VIDEOS_MANIFEST
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} not found: run `sfi-data filter INPUT... --out {out_dir}` first")
    remove_stale_temporaries(out_dir)
    videos = pq.ParquetFile(manifest).read()  # not read_table: its dataset machinery costs more memory
    kept = videos.filter(pc.fill_null(pc.equal(videos.column("status"), STATUS_OK), False))
    del videos
    if not kept.num_rows:
        raise NothingToDoError(f"no video passed the filter in {manifest}")
    recorded = filter_score_config(out_dir)
    score = validate(score or recorded)
    if config.reader is None:
        config = dataclasses.replace(config, reader=recorded.reader)
    if config.score_clips:
        PairScorer(score, weights_dir).check_weights()
    stage = CutStage(out_dir, config, score, weights_dir)
    stage.num_gpus = gpu_share(score, run)
    summary = CurationSummary.of(run_stage(stage, kept, out_dir, CLIPS, run, progress))

    def count_batch(batch: pa.Table) -> None:
        count_table(summary, batch)
        ok_clips = batch.filter(pc.fill_null(pc.equal(batch.column("status"), STATUS_OK), False))
        for entry in pc.value_counts(ok_clips.column("num_frames")).to_pylist():
            summary.per_scale[entry["values"]] += entry["counts"]

    # Batch by batch: six clip rows per video would make the merged table the driver's largest object.
    wanted = kept.column("video_id")
    del kept
    merge = PartsMerge(out_dir / "work" / stage.name, CLIPS, "video_id", wanted)
    merge.write(out_dir / CLIPS_MANIFEST, each=count_batch)
    return summary
