"""Scoring (`sfi-bench score`): per-clip metric values and mergeable states, then per-group results.

Each clip's generated frames and ground truth are decoded once and every metric updates a fresh state
with it. The value and the state of every (clip, metric) are kept in RUNDIR/scores/clips/{clip_id}.npz,
so a rerun (or `--metric X` later) computes only what is missing, clips can be scored on several
workers (`--executor ray`, `--shard I/N`), and the per-group results are the merge of the per-clip
states in manifest order -- the same numbers whatever the number of workers.
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
from sfi_bench.state_io import StateEncoder, decode, read_npz, write_npz
from sfi_bench.storage import ClipRecord, FrameStore
from sfi_bench.testset import TestClip, fit_to_clip, read_conditions, read_ground_truth
from sfi_core.stage import Stage, describe_error

log = logging.getLogger(__name__)

SCORE_PART_SCHEMA = pa.schema([("clip_id", pa.string()), ("status", pa.string()), ("reason", pa.string())])


@dataclass
class ClipScores:
    record_digest: (
        str  # of the clip's record (FrameStore.record_digest): regenerated frames invalidate the scores
    )
    entries: dict[str, ClipEntry] = field(default_factory=dict)


def record_digest(store: FrameStore, clip_id: str) -> str:
    return store.record_digest(clip_id)


def scores_path(run_dir: Path, clip_id: str) -> Path:
    return Path(run_dir) / "scores" / "clips" / f"{clip_id}.npz"


def read_clip_scores(run_dir: Path, clip_id: str, digest: str) -> ClipScores:
    """What was scored for this clip, or nothing if its frames changed since."""
    path = scores_path(run_dir, clip_id)
    if not path.is_file():
        return ClipScores(digest)
    meta, arrays = read_npz(path)
    if meta.get("record_digest") != digest:
        return ClipScores(digest)
    entries = {
        name: ClipEntry(
            e["value"], None if e["state"] is None else decode(e["state"], arrays), e["version"], e["reason"]
        )
        for name, e in meta["entries"].items()
    }
    return ClipScores(digest, entries)


def write_clip_scores(run_dir: Path, clip_id: str, scores: ClipScores) -> None:
    encoder = StateEncoder()
    entries = {
        name: {
            "value": e.value,
            "state": None if e.state is None else encoder.encode(e.state),
            "version": e.version,
            "reason": e.reason,
        }
        for name, e in scores.entries.items()
    }
    write_npz(
        scores_path(run_dir, clip_id), {"record_digest": scores.record_digest, "entries": entries}, encoder
    )


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
    """Loads each metric once per worker; for each clip row, computes the metrics it still lacks."""

    name = "score"
    key = "clip_id"

    def __init__(
        self,
        run_dir: Path,
        metrics: list[str],
        device: str,
        weights_dir: str | None,
        gpus: float = 0.0,
        overwrite: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.gpus_required = gpus > 0  # --gpus-per-worker without GPUs must not quietly score on CPUs
        self.overwrite = overwrite  # recompute the requested metrics even where they are stored
        self.metrics = metrics
        self.device = device
        self.weights_dir = weights_dir
        self.num_gpus = gpus
        self.prototypes: dict[str, ConfiguredMetric] = {}
        self.fingerprints: dict[
            str, str
        ] = {}  # version and weight digests: a stored entry is reused only on a match
        self.unavailable: dict[str, str] = {}

    def setup(self) -> None:
        from sfi_bench.metrics import metric_class

        for name in self.metrics:
            try:
                prototype = metric_class(name)(device=self.device, weights_dir=self.weights_dir)
                prototype.load()
                self.prototypes[name] = prototype
                self.fingerprints[name] = metric_fingerprint(prototype, self.weights_dir)
            except Exception as err:  # noqa: BLE001 - a metric that cannot load is "not computed", not a crash
                self.unavailable[name] = (
                    str(err) if isinstance(err, MetricUnavailable) else describe_error(err)
                )

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        store = FrameStore(self.run_dir)
        model = store.read_run_info()["model"]
        for row in rows:
            clip: TestClip = row["clip"]
            record = store.read_record(clip.clip_id)
            scores = read_clip_scores(self.run_dir, clip.clip_id, record_digest(store, clip.clip_id))
            todo = [
                n for n in self.prototypes if self.overwrite or not _is_done(scores, n, self.fingerprints[n])
            ]
            if not todo and not self.unavailable:
                yield {"clip_id": clip.clip_id, "status": "ok", "reason": None}
                continue
            if todo:
                try:
                    sample = clip_sample(store, record, clip, model)
                except (OSError, ValueError) as err:
                    yield {"clip_id": clip.clip_id, "status": "error", "reason": describe_error(err)}
                    continue
                for name in todo:
                    scores.entries[name] = self._score(name, sample)
            for name, reason in self.unavailable.items():
                # Kept with the clip so every worker's reason reaches the tables; retried on a rerun.
                scores.entries[name] = ClipEntry(None, None, _version(name), reason)
            write_clip_scores(self.run_dir, clip.clip_id, scores)
            failed = [f"{n}: {scores.entries[n].reason}" for n in todo if scores.entries[n].reason]
            yield {"clip_id": clip.clip_id, "status": "ok", "reason": "; ".join(failed) or None}

    def _score(self, name: str, sample: ClipSample) -> ClipEntry:
        try:
            return score_clip(self.prototypes[name], sample, self.fingerprints[name])
        except MetricUnavailable as err:  # raised lazily: this clip's entry says why; a rerun retries it
            return ClipEntry(None, None, self.fingerprints[name], reason_of(err))


def _version(name: str) -> str:
    from sfi_bench.metrics import metric_class

    return str(metric_class(name).version)


def metric_fingerprint(metric: Metric, weights_dir: str | None) -> str:
    """The metric's version and the sha256 of each weights file it loaded: what makes two values comparable.

    A stored per-clip value made with other weights (another checkpoint under --weights-dir, a fetched
    update) or another metric version is computed again, never merged with this run's.
    """
    from sfi_core.weights import resolve
    from sfi_core.weights.lock import file_digest

    parts = [str(type(metric).version)]
    for name in type(metric).weights:
        path = resolve(name, Path(weights_dir) if weights_dir else None)
        if path.is_file():
            parts.append(f"{name}={file_digest(path)[:16]}")
    return " ".join(parts)


def _is_done(scores: ClipScores, name: str, fingerprint: str) -> bool:
    entry = scores.entries.get(name)
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
