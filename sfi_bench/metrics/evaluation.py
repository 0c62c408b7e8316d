"""The one metric evaluation path: a fresh state per (clip, metric), its declared state kept, groups merged.

`sfi-bench score` (sfi_bench.scoring: states stored per clip in the run directory, on any number of
workers), `metrics.suite.evaluate` (in memory: the tests, `scripts/gpu_check.py`) and the summary
tables all go through here, so they compute, merge and report a metric the same way:

1. `score_clip`: the metric's fresh state (`fresh()`: the loaded networks, empty declared state)
   updates on one clip; its value (None for set-level metrics) and its declared state (`state()`) are
   the clip's entry, or the reason it failed.
2. `group_results`: per frame count and for "All", the entries' states merged (`merge`, by each
   state's declared rule) and computed; failed clips are counted beside the value.
3. `result_row`: one summary row's metric columns, the same keys wherever a table is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sfi_bench.metrics import metric_class
from sfi_bench.metrics.base import ClipSample, ConfiguredMetric, MetricResult, MetricUnavailable
from sfi_core.stage import describe_error

log = logging.getLogger(__name__)

ALL_GROUP = "All"


@dataclass
class ClipEntry:
    """One metric on one clip: its value (None for set-level metrics), its state, or why it failed."""

    value: float | None
    state: dict[str, Any] | None
    version: str
    reason: str | None = None

    @property
    def done(self) -> bool:
        return self.reason is None


def reason_of(error: BaseException) -> str:
    """One line: MetricUnavailable already says what to do; anything else names its type."""
    text = str(error) if isinstance(error, MetricUnavailable) else describe_error(error)
    return " ".join(text.split())


def score_clip(prototype: ConfiguredMetric, sample: ClipSample, version: str) -> ClipEntry:
    """A fresh state of `prototype` updated on `sample`: the clip's entry (MetricUnavailable, which
    stops the metric for every clip, propagates; any other failure is this clip's reason)."""
    from sfi_bench.state_io import StateEncoder

    state = prototype.fresh()
    try:
        value = state.update(sample)
        kept = state.state()
        StateEncoder().encode(kept)  # a state a score file cannot hold fails here, as this metric's error
    except MetricUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - one metric failing on one clip leaves the others standing
        log.warning("metric %s failed on %s: %s", prototype.name, sample.clip_id, err)
        return ClipEntry(None, None, version, reason_of(err))
    return ClipEntry(None if value is None else float(value), kept, version)


def empty_metric(name: str) -> ConfiguredMetric:
    """An unloaded instance: enough to merge states and compute, no network."""
    return metric_class(name)(device="cpu")


@dataclass
class GroupResult:
    result: MetricResult
    clips_scored: int
    per_clip: list[float]


def merge_group(name: str, states: list[dict[str, Any]]) -> MetricResult:
    merged = empty_metric(name)
    for state in states:
        merged.merge(empty_metric(name).load_state(state))
    try:
        return merged.compute()
    except Exception as err:  # noqa: BLE001 - a failing aggregate (FID's linear algebra) is "not computed"
        return MetricResult(None, 0, reason_of(err))


def group_result(name: str, entries: list[tuple[str, ClipEntry]]) -> GroupResult:
    """The merge of (clip_id, entry) pairs; failed clips are named beside the value."""
    done = [entry for _, entry in entries if entry.done]
    failed = [(clip_id, entry.reason) for clip_id, entry in entries if entry.reason]
    if not done:
        return GroupResult(MetricResult(None, 0, failed[0][1] if failed else "no clips scored"), 0, [])
    values = [entry.value for entry in done if entry.value is not None]
    result = merge_group(name, [entry.state for entry in done])
    if failed and result.value is not None:
        note = f"{len(failed)} clip(s) not computed, e.g. {failed[0][0]}: {failed[0][1]}"
        result = MetricResult(
            result.value, result.num_samples, f"{result.reason}; {note}" if result.reason else note
        )
    return GroupResult(result, len(done), values)


def group_results(name: str, entries: list[tuple[int, str, ClipEntry]]) -> dict[str, GroupResult]:
    """(num_frames, clip_id, entry) triples, in manifest order -> "All" and one result per frame count."""
    by_group: dict[str, list[tuple[str, ClipEntry]]] = {}
    for num_frames, clip_id, entry in sorted(entries, key=lambda item: item[0]):
        by_group.setdefault(str(num_frames), []).append((clip_id, entry))
    every = [pair for pairs in by_group.values() for pair in pairs]
    return {ALL_GROUP: group_result(name, every)} | {
        g: group_result(name, pairs) for g, pairs in by_group.items()
    }


def result_row(name: str, group: str, result: MetricResult) -> dict[str, Any]:
    """The metric columns of one summary row (what every results table shares)."""
    from sfi_bench.provenance import metric_definition

    definition = metric_definition(name)
    return {
        "group": group,
        "metric": name,
        "id": definition["id"],
        "value": result.value,
        "num_samples": result.num_samples,
        "status": "ok" if result.value is not None else "not computed",
        "reason": result.reason,  # beside a value: the clips that failed
    } | {key: definition[key] for key in ("direction", "version", "label", "category", "cap")}
