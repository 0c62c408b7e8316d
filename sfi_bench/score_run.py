"""`score_run`: score a run directory (all of it, or one shard, on any executor) and write its tables.

RUNDIR/scores_clips.parquet holds one row per clip, RUNDIR/scores_summary.parquet one row per (group,
metric), and RUNDIR/scores.json the metric list, the definitions, the test set's fingerprint and the
environment -- what the leaderboard's results JSON carries per model. Metrics scored earlier are kept:
`--metric X` adds or replaces X.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from sfi_bench.generate import ParallelConfig, now
from sfi_bench.metrics.base import MetricResult
from sfi_bench.metrics.evaluation import GroupResult, result_row
from sfi_bench.provenance import environment, metric_definition, metric_id
from sfi_bench.scoring import (
    ALL_GROUP,
    SCORE_SCHEMA,
    ClipScores,
    ScoreStage,
    current,
    group_results,
    is_current,
    metric_fingerprint,
    read_scores,
    uncertainty,
)
from sfi_bench.storage import STATUS_OK, FrameStore
from sfi_bench.testset import ShardSpec, TestClip, load_test_clips
from sfi_core.config import ExecutionConfig
from sfi_core.driver import Progress, run_stage
from sfi_core.manifest import write_table

SCORES_JSON = "scores.json"


@dataclass
class ScoreOutputs:
    clips_path: Path
    summary_path: Path
    num_scored: int  # clips with at least one metric scored
    requested: list[str] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)

    def computed(self, name: str) -> bool:
        return any(
            r["metric"] == name and r["group"] == ALL_GROUP and r["value"] is not None for r in self.summary
        )


def clip_set_digest(clips: list[TestClip]) -> str:
    """Fingerprint of the test clips (ids and lengths): runs compared in one table must share it."""
    text = "\n".join(f"{c.clip_id}:{c.num_frames}" for c in sorted(clips, key=lambda c: c.clip_id))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def previous_metrics(run_dir: Path) -> list[str]:
    path = Path(run_dir) / SCORES_JSON
    if not path.is_file():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")).get("metrics") or [])


def summary_rows(
    model: str,
    name: str,
    clips: list[TestClip],
    scores: dict[str, ClipScores],
    test_clips: list[TestClip],
    stale: int = 0,
) -> list[dict]:
    """One row per group ("All", then each frame count): the shared metric columns (result_row), and
    the run's own: the model, clips scored against clips in the test set, the uncertainty.

    `scores` holds current entries only; `stale`: clips whose entry was made with another version or
    weights of the metric, left out of the value (and said so in the "All" row)."""
    in_test: dict[str, int] = {ALL_GROUP: len(test_clips)}
    for clip in test_clips:
        in_test[str(clip.num_frames)] = in_test.get(str(clip.num_frames), 0) + 1
    entries = [
        (c.num_frames, c.clip_id, scores[c.clip_id].entries[name])
        for c in clips
        if c.clip_id in scores and name in scores[c.clip_id].entries
    ]
    groups = {str(n): [] for n in sorted({c.num_frames for c in clips})}
    results = {group: GroupResult(MetricResult(None, 0, "no clips scored"), 0, []) for group in groups}
    results = results | group_results(name, entries)
    rows = []
    for group in [ALL_GROUP, *sorted((g for g in results if g != ALL_GROUP), key=int)]:
        outcome = results[group]
        if group == ALL_GROUP and stale:
            note = (
                f"{stale} clip(s) scored with another version or weights of {name} are left out; "
                f"rerun `sfi-bench score RUNDIR --metric {name}`"
            )
            reason = outcome.result.reason
            outcome.result = MetricResult(
                outcome.result.value, outcome.result.num_samples, f"{reason}; {note}" if reason else note
            )
        computed = outcome.result.value is not None
        rows.append(
            {"model": model}
            | result_row(name, group, outcome.result)
            | {
                "clips_scored": outcome.clips_scored if computed else 0,
                "clips_in_test": in_test.get(group, 0),
                **uncertainty(outcome.per_clip),
            }
        )
    return rows


def score_run(
    run_dir: Path,
    metrics: list[str] | None = None,
    device: str = "auto",
    weights_dir: str | None = None,
    progress: Progress | None = None,
    parallel: ParallelConfig | None = None,
    overwrite: bool = False,
) -> ScoreOutputs:
    """Score the clips that still lack a requested metric (all of them with `overwrite`); rebuild the tables.

    `progress(done, total)`: clips scored so far of those this call scores.
    """
    from sfi_bench.metrics import metric_class
    from sfi_bench.metrics.suite import DEFAULT_METRICS

    parallel = parallel or ParallelConfig()
    run_dir = Path(run_dir)
    store = FrameStore(run_dir)
    info = store.read_run_info()
    model = info["model"]
    requested = list(dict.fromkeys(metrics or DEFAULT_METRICS))
    for name in requested:
        metric_class(name)  # unknown names fail before any work, with "did you mean"
    names = list(dict.fromkeys(previous_metrics(run_dir) + requested))
    fingerprints = {name: metric_fingerprint(metric_class(name), weights_dir) for name in names}
    test_clips = load_test_clips(Path(info["clips_manifest"]))
    ok_ids = {r.clip_id for r in store.records() if r.status == STATUS_OK}
    generated = [c for c in test_clips if c.clip_id in ok_ids]
    mine = ShardSpec.parse(parallel.shard).select(generated)
    held = read_scores(run_dir, store, [c.clip_id for c in mine], states=False)
    rows = []
    for clip in mine:
        lacking = [
            n
            for n in requested
            if overwrite or not is_current(held[clip.clip_id].entries.get(n), fingerprints[n])
        ]
        if lacking:
            digest = held[clip.clip_id].record_digest
            rows.append({"clip_id": clip.clip_id, "clip": clip, "metrics": lacking, "record_digest": digest})
    stage = ScoreStage(
        run_dir,
        {n: fingerprints[n] for n in requested},
        device,
        weights_dir,
        parallel.gpus_per_worker,
        parallel.workers,
    )
    execution = ExecutionConfig(
        executor=parallel.executor, address=parallel.address, num_cpus=parallel.workers
    )
    # The ledger's rows are per (clip, metric); the driver plans per clip, and every clip that lacks a
    # metric is redone (its new rows supersede the old by generation; the clip's other metrics stay).
    run_stage(stage, rows, run_dir, SCORE_SCHEMA, execution, progress, redo={r["clip_id"] for r in rows})
    every = read_scores(run_dir, store, [c.clip_id for c in generated])
    scores = {clip_id: current(held, fingerprints) for clip_id, held in every.items()}
    summary = []
    for name in names:
        stale = sum(name in every[c].entries and name not in scores[c].entries for c in every)
        summary += summary_rows(model, name, generated, scores, test_clips, stale)
    per_clip = [
        {"model": model, "clip_id": c.clip_id, "num_frames": c.num_frames}
        | {name: _value(scores[c.clip_id], name) for name in names}
        for c in generated
        if scores[c.clip_id].entries
    ]
    clips_path, summary_path = run_dir / "scores_clips.parquet", run_dir / "scores_summary.parquet"
    write_table(
        pa.Table.from_pylist(per_clip) if per_clip else pa.table({"clip_id": pa.array([], pa.string())}),
        clips_path,
    )
    write_table(pa.Table.from_pylist(summary), summary_path)
    store.write_generations_table()
    document = {
        "metrics": names,
        "metric_ids": {name: metric_id(name) for name in names},
        "scored_at": now(),
        "clips_in_test": len(test_clips),
        "clips_generated": len(generated),
        "clip_set": clip_set_digest(test_clips),
        "device": device,
        "definitions": {name: metric_definition(name) for name in names},
        "environment": environment(),
    }
    (run_dir / SCORES_JSON).write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
    return ScoreOutputs(clips_path, summary_path, len(per_clip), requested, summary)


def _value(scores: ClipScores, name: str) -> float | None:
    entry = scores.entries.get(name)
    return entry.value if entry is not None else None
