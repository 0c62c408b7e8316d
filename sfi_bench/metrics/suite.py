"""Run a set of metrics over decoded clips: per-clip values, and per-group ("All", "5", "9", ...) summaries.

Each clip is decoded once by the caller; every metric reads the same arrays. Each metric is loaded
once; per frame-count group it keeps its own state (`fresh()` shares the networks), and "All" is the
merge of the group states, so set-level metrics (FID, KID) are computed per scale and overall without
running a network twice. Any exception inside one metric -- missing weights or package, a corrupt weights
file, frames a network cannot take -- makes that metric "not computed" with the reason, for that clip
or for the whole run when it cannot load; the other metrics still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sfi_bench.metrics import METRIC_REGISTRY, metric_class
from sfi_bench.metrics.base import ClipSample, ConfiguredMetric, MetricResult, MetricUnavailable
from sfi_core.stage import describe_error

# The Table 2 set in Table 2 order (KID rides along with FID: per-scale sets are too small for FID alone).
# psnr_all / ssim_all (every generated frame against the ground truth) need no weights, so a CPU-only
# board still ranks by fidelity.
DEFAULT_METRICS: list[str] = [
    "lpips",
    "fid",
    "kid",
    "psnr_all",
    "ssim_all",
    "endpoint_psnr",
    "endpoint_ssim",
    "endpoint_lpips",
    "viclip",
    "temporal_flickering",
    "motion_smoothness",
    "dynamic_degree",
    "aesthetic_quality",
    "imaging_quality",
]

ALL_GROUP = "All"


@dataclass
class SuiteResult:
    per_clip: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)


def metric_info(names: list[str] | None = None) -> list[dict]:
    """Static facts about metrics (no network is loaded): what the leaderboard prints."""
    rows = []
    for name in names or list(METRIC_REGISTRY):
        cls = metric_class(name)
        rows.append(
            {
                "id": cls.id or name,
                "cap": cls.cap,
                "name": name,
                "label": cls.label() if issubclass(cls, ConfiguredMetric) else name,
                "direction": cls.direction,
                "version": cls.version,
                "category": cls.group,
                "weights": list(cls.weights),
                "variant_of": getattr(cls, "variant_of", None),
            }
        )
    return rows


def _group_key(num_frames: int) -> str:
    return str(num_frames)


def _sorted_groups(groups: Iterable[str]) -> list[str]:
    return sorted(groups, key=int)


def _reason(error: BaseException) -> str:
    """One line for the table: MetricUnavailable already says what to do; anything else names its type."""
    text = str(error) if isinstance(error, MetricUnavailable) else describe_error(error)
    return " ".join(text.split())


class _MetricRun:
    """One metric's loaded instance and per-group states, or the reason it is not computed."""

    def __init__(self, name: str, device: str, weights_dir: str | Path | None) -> None:
        self.name = name
        self.cls = metric_class(name)
        self.reason: str | None = None
        self.prototype: ConfiguredMetric | None = None
        self.groups: dict[str, ConfiguredMetric] = {}
        self.clip_failures: dict[str, str] = {}  # clip_id -> reason
        try:
            prototype = self.cls(device=device, weights_dir=weights_dir)
            prototype.load()
            self.prototype = prototype
        except Exception as err:  # noqa: BLE001 - a corrupt file or a bad package is "not computed", not a crash
            self.reason = _reason(err)

    def update(self, sample: ClipSample) -> float | None:
        if self.prototype is None:
            return None
        key = _group_key(sample.num_frames)
        if key not in self.groups:
            self.groups[key] = self.prototype.fresh()
        try:
            return self.groups[key].update(sample)
        except MetricUnavailable as err:
            # Raised lazily (e.g. a package needed only now): stop this metric, keep the others running.
            self.reason, self.prototype, self.groups = _reason(err), None, {}
        except Exception as err:  # noqa: BLE001 - one clip's failure (frames RAFT cannot take) stays that clip's
            self.clip_failures[sample.clip_id] = _reason(err)
        return None

    def failure_note(self, result: MetricResult) -> MetricResult:
        """Say how many clips failed and why, beside the value computed on the others (or instead of it)."""
        if not self.clip_failures:
            return result
        first_clip, first_reason = next(iter(self.clip_failures.items()))
        note = f"{len(self.clip_failures)} clip(s) not computed, e.g. {first_clip}: {first_reason}"
        return MetricResult(
            result.value, result.num_samples, f"{result.reason}; {note}" if result.reason else note
        )

    def results(self, group_names: list[str]) -> dict[str, MetricResult]:
        if self.prototype is None:
            return {g: MetricResult(None, 0, self.reason) for g in [ALL_GROUP, *group_names]}
        out: dict[str, MetricResult] = {}
        merged = self.prototype.fresh()
        for group in group_names:
            state = self.groups.get(group)
            if state is None:
                out[group] = MetricResult(None, 0, "no clips in this group")
                continue
            out[group] = self._compute(state)
            merged.merge(state)
        out[ALL_GROUP] = self.failure_note(self._compute(merged))
        return out

    @staticmethod
    def _compute(state: ConfiguredMetric) -> MetricResult:
        try:
            return state.compute()
        except Exception as err:  # noqa: BLE001 - a failing aggregate (FID's linear algebra) is "not computed"
            return MetricResult(None, 0, _reason(err))


def evaluate(
    samples: Iterable[ClipSample],
    metrics: list[str] | None = None,
    *,
    device: str = "auto",
    weights_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> SuiteResult:
    """Score every sample with every metric. `progress(n)` is called after each clip with n = 1 (advance)."""
    names = list(metrics or DEFAULT_METRICS)
    for name in names:
        metric_class(name)  # unknown names fail at once, with "did you mean"
    runs = [_MetricRun(name, device, weights_dir) for name in names]
    per_clip: list[dict] = []
    groups: set[str] = set()
    for sample in samples:
        groups.add(_group_key(sample.num_frames))
        row: dict = {"clip_id": sample.clip_id, "num_frames": sample.num_frames}
        for run in runs:
            row[run.name] = run.update(sample)
            if sample.clip_id in run.clip_failures:
                row[f"{run.name}_reason"] = f"not computed: {run.clip_failures[sample.clip_id]}"
        per_clip.append(row)
        if progress is not None:
            progress(1)
    group_names = _sorted_groups(groups)
    summary = []
    for run in runs:
        results = run.results(group_names)
        for group in [ALL_GROUP, *group_names]:
            result = results[group]
            computed = result.value is not None
            summary.append(
                {
                    "group": group,
                    "metric": run.name,
                    "id": run.cls.id or run.name,
                    "cap": run.cls.cap,
                    "value": result.value,
                    "num_samples": result.num_samples,
                    "status": "ok" if computed else "not computed",
                    "reason": result.reason,
                    "direction": run.cls.direction,
                    "version": run.cls.version,
                    "label": run.cls.label(),
                    "category": run.cls.group,
                }
            )
    return SuiteResult(per_clip=per_clip, summary=summary)
