"""Scoring (`sfi-bench score`): per-(clip, metric) values and mergeable states, on the driver's ledger.

Each clip's generated frames and ground truth are decoded once and every metric it still lacks
updates a fresh state with it. Every (clip, metric) is one row of the score stage's part files,
RUNDIR/work/score/ (the shared driver's ledger, as the generate stage's part files are the clips'
records): its value or the reason it failed, its declared state (as bytes, state_io), the metric's
fingerprint (its version and the digests of its weights) and the digest of the clip's record. The
newest row per (clip, metric) wins, by the generation in its part's name (never a file time).

A row counts only while both digests are this run's: frames generated again, another metric version
or other weights make it stale, and the metric is scored again on that clip -- a stale value is never
merged with current ones. So a rerun (or `--metric X` later) computes only what is missing, clips can
be scored on several workers (`--executor ray`, `--shard I/N`), and the per-group results are the
merge of the per-clip states in manifest order: the same numbers whatever the number of workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from sfi_bench.metrics.base import ClipSample, ConfiguredMetric, Metric, MetricUnavailable
from sfi_bench.metrics.evaluation import (  # noqa: F401 - the score tables' names
    ALL_GROUP,
    ClipEntry,
    GroupResult,
    empty_metric,
    group_results,
    merge_group,
    reason_of,
    score_clip,
)
from sfi_bench.state_io import decode, decode_state, encode_state, read_npz
from sfi_bench.storage import ClipRecord, FrameStore
from sfi_bench.testset import TestClip, fit_to_clip, read_conditions, read_ground_truth
from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.manifest import next_generation, shard_name, write_rows
from sfi_core.manifest_table import PartsMerge
from sfi_core.stage import Stage, describe_error

log = logging.getLogger(__name__)

# The score stage's part files under RUNDIR: one row per (clip, metric).
LEDGER = Path("work") / "score"
SCORE_SCHEMA = pa.schema(
    [
        ("score_key", pa.string()),  # clip_id/metric: the newest row of each wins
        ("clip_id", pa.string()),  # the stage's key: the unit of work, decoded once
        ("metric", pa.string()),
        ("status", pa.string()),  # ok, or error (retried on the next run that asks for the metric)
        ("reason", pa.string()),
        ("value", pa.float64()),  # None for set-level metrics (their value is the merged states')
        ("version", pa.string()),  # the metric's fingerprint when scored (metric_fingerprint)
        ("record_digest", pa.string()),  # of the clip's record when scored (FrameStore.record_digest)
        ("state", pa.binary()),  # the declared state (state_io.encode_state)
    ]
)


def score_key(clip_id: str, metric: str) -> str:
    return f"{clip_id}/{metric}"


@dataclass
class ClipScores:
    record_digest: str  # of the clip's record: regenerated frames invalidate its scores
    entries: dict[str, ClipEntry] = field(default_factory=dict)


def ledger_row(clip_id: str, metric: str, entry: ClipEntry, digest: str) -> dict[str, Any]:
    return {
        "score_key": score_key(clip_id, metric),
        "clip_id": clip_id,
        "metric": metric,
        "status": STATUS_OK if entry.done else STATUS_ERROR,
        "reason": entry.reason,
        "value": entry.value,
        "version": entry.version,
        "record_digest": digest,
        "state": None if entry.state is None else encode_state(entry.state),
    }


def read_scores(
    run_dir: Path, store: FrameStore, clip_ids: Iterable[str], states: bool = True
) -> dict[str, ClipScores]:
    """Each clip's entries: the newest ledger row per (clip, metric) made from the clip's current record.

    Entries of any metric fingerprint are returned (`current` keeps this run's); rows of frames
    generated since are left out. `states=False`: the entries without their states, whose column is then
    not read (deciding what to score needs none, and FID's feature rows are megabytes a clip).
    """
    adopt_legacy_scores(run_dir, store)
    scores = {clip_id: ClipScores(store.record_digest(clip_id)) for clip_id in clip_ids}
    columns = [name for name in SCORE_SCHEMA.names if states or name != "state"]
    for row in PartsMerge(
        Path(run_dir) / LEDGER, SCORE_SCHEMA, "score_key", columns=columns
    ).kept.to_pylist():
        held = scores.get(row["clip_id"])
        if held is None or row["record_digest"] != held.record_digest:
            continue
        state = None if row.get("state") is None else decode_state(row["state"])
        held.entries[row["metric"]] = ClipEntry(row["value"], state, row["version"], row["reason"])
    return scores


def current(scores: ClipScores, fingerprints: dict[str, str]) -> ClipScores:
    """Only the entries made with this run's version and weights of their metric."""
    kept = {n: e for n, e in scores.entries.items() if e.version == fingerprints.get(n)}
    return ClipScores(scores.record_digest, kept)


def adopt_legacy_scores(run_dir: Path, store: FrameStore) -> int:
    """A run directory from before the ledger (scores/clips/{clip_id}.npz): its entries become one part,
    kept with the record digest they were scored against (so they count only if the frames are the same)."""
    legacy, parts_dir = Path(run_dir) / "scores" / "clips", Path(run_dir) / LEDGER
    if not legacy.is_dir() or any(parts_dir.glob("part-*.parquet")):
        return 0
    rows = []
    for path in sorted(legacy.glob("*.npz")):
        meta, arrays = read_npz(path)
        for name, e in meta["entries"].items():
            state = None if e["state"] is None else decode(e["state"], arrays)
            entry = ClipEntry(e["value"], state, e["version"], e["reason"])
            rows.append(ledger_row(path.stem, name, entry, meta["record_digest"]))
    if rows:
        keys = [row["score_key"] for row in rows]
        write_rows(rows, SCORE_SCHEMA, parts_dir / shard_name(keys, next_generation(parts_dir)))
        log.info("%s: %d scores of scores/clips/ adopted into %s", run_dir, len(rows), parts_dir)
    return len(rows)


# ---------------------------------------------------------------- the per-clip work


def clip_sample(store: FrameStore, record: ClipRecord, clip: TestClip, model: str) -> ClipSample:
    """The generated clip, its ground truth (fitted to it when shapes differ) and the conditions."""
    generated = store.read_frames(record.frames_path)
    first, last = read_conditions(clip)
    reference = read_ground_truth(clip)
    extra: dict[str, Any] = {"model": model}
    if reference is not None and (
        len(reference) != clip.num_frames or reference.shape[1:3] != generated.shape[1:3]
    ):
        extra["reference_note"] = (
            f"ground truth has {len(reference)} frames of {reference.shape[2]}x"
            f"{reference.shape[1]}; fitted to the generated clip"
        )
        reference = fit_to_clip(
            reference, clip.num_frames, generated.shape[1], generated.shape[2], "nearest"
        ).frames
    return ClipSample(
        clip_id=clip.clip_id,
        num_frames=clip.num_frames,
        generated=generated,
        reference=reference,
        first_condition=first,
        last_condition=last,
        prompt=clip.prompt,
        fps=clip.fps,
        extra=extra,
    )


class ScoreStage(Stage):
    """Loads each metric once per worker; for each clip row, scores the metrics the row names.

    A row: the clip, `metrics` (what it lacks, decided by score_run from the ledger) and the digest of
    its record. It yields one ledger row per metric: the value and state, or why it failed.
    """

    name = "score"
    key = "clip_id"
    shard_size = 1  # a clip is the unit of resume: a killed run loses at most the clips in flight

    def __init__(
        self,
        run_dir: Path,
        fingerprints: dict[str, str],
        device: str,
        weights_dir: str | None,
        gpus: float = 0.0,
        workers: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.gpus_required = gpus > 0  # --gpus-per-worker without GPUs must not quietly score on CPUs
        self.replica = workers is None  # metric networks: sized by the machine unless --workers N
        self.fingerprints = fingerprints  # metric -> version and weight digests (metric_fingerprint)
        self.device = device
        self.weights_dir = weights_dir
        self.num_gpus = gpus
        self.prototypes: dict[str, ConfiguredMetric] = {}
        self.unavailable: dict[str, str] = {}

    def settings(self) -> dict:
        # What shapes a value is recorded per row (the metric's fingerprint, the record's digest): a
        # changed metric is scored again clip by clip, and the rows of every other metric are kept,
        # where one stage-wide setting would refuse `--metric X` on a scored run or redo all of it.
        return {}

    def setup(self) -> None:
        from sfi_bench.metrics import metric_class

        for name in self.fingerprints:
            try:
                prototype = metric_class(name)(device=self.device, weights_dir=self.weights_dir)
                prototype.load()
                self.prototypes[name] = prototype
            except Exception as err:  # noqa: BLE001 - a metric that cannot load is "not computed", not a crash
                self.unavailable[name] = reason_of(err)

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        store = FrameStore(self.run_dir)
        model = store.read_run_info()["model"]
        for row in rows:
            clip: TestClip = row["clip"]
            todo: list[str] = row["metrics"]
            entries = {
                name: ClipEntry(None, None, self.fingerprints[name], self.unavailable[name])
                for name in todo
                if name in self.unavailable  # kept with every clip: each worker's reason reaches the tables
            }
            loaded = [name for name in todo if name in self.prototypes]
            if loaded:
                try:
                    sample = clip_sample(store, store.read_record(clip.clip_id), clip, model)
                except (OSError, ValueError) as err:
                    entries |= {
                        n: ClipEntry(None, None, self.fingerprints[n], describe_error(err)) for n in loaded
                    }
                else:
                    entries |= {name: self._score(name, sample) for name in loaded}
            for name in todo:
                yield ledger_row(clip.clip_id, name, entries[name], row["record_digest"])

    def _score(self, name: str, sample: ClipSample) -> ClipEntry:
        try:
            return score_clip(self.prototypes[name], sample, self.fingerprints[name])
        except MetricUnavailable as err:  # raised lazily: this clip's entry says why; a rerun retries it
            return ClipEntry(None, None, self.fingerprints[name], reason_of(err))


def metric_fingerprint(metric: Metric | type[Metric], weights_dir: str | None) -> str:
    """The metric's version and the sha256 of each weights file it loads: what makes two values comparable.

    A stored per-clip value made with other weights (another checkpoint under --weights-dir, a fetched
    update) or another metric version is computed again, never merged with this run's. Needs the
    class only, so the tables can tell a stale entry of a metric this run does not load.
    """
    from sfi_core.weights import WeightsMissingError, resolve
    from sfi_core.weights.lock import file_digest

    cls = metric if isinstance(metric, type) else type(metric)
    parts = [str(cls.version)]
    for name in cls.weights:
        try:
            path = resolve(name, Path(weights_dir) if weights_dir else None)
        except WeightsMissingError:  # missing or corrupt: the metric cannot load, its rows say why
            continue
        if path.is_file():
            parts.append(f"{name}={file_digest(path)[:16]}")
    return " ".join(parts)


def is_current(entry: ClipEntry | None, fingerprint: str) -> bool:
    """Scored without an error and with this run's version and weights of the metric."""
    return entry is not None and entry.done and entry.version == fingerprint


def uncertainty(values: list[float], resamples: int = 1000, seed: int = 0) -> dict[str, float | None]:
    """Standard error of the mean of per-clip values and a seeded percentile-bootstrap 95 % interval."""
    if len(values) < 2:
        return {"stderr": None, "ci95_low": None, "ci95_high": None}
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    if len(finite) < 2:
        return {"stderr": None, "ci95_low": None, "ci95_high": None}
    rng = np.random.default_rng(seed)
    means = finite[rng.integers(0, len(finite), (resamples, len(finite)))].mean(axis=1)
    return {
        "stderr": float(finite.std(ddof=1) / np.sqrt(len(finite))),
        "ci95_low": float(np.percentile(means, 2.5)),
        "ci95_high": float(np.percentile(means, 97.5)),
    }
