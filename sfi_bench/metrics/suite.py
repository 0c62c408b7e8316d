"""Run a set of metrics over decoded clips in memory: per-clip values, and per-group ("All", "5", "9", ...)
summaries, by the one evaluation path `sfi-bench score` uses (sfi_bench.metrics.evaluation).

Each clip is decoded once by the caller; every metric reads the same arrays. Each metric is loaded
once; every clip updates a fresh state (`fresh()` shares the networks) whose declared state is merged
per group and for "All", so set-level metrics (FID, KID) are computed per scale and overall without
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
from sfi_bench.metrics.evaluation import (
    ALL_GROUP,
    ClipEntry,
    group_results,
    reason_of,
    result_row,
    score_clip,
)

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
    prototypes: dict[str, ConfiguredMetric] = {}
    unavailable: dict[str, str] = {}  # metric -> why it is not computed at all
    for name in names:
        try:
            prototypes[name] = metric_class(name)(device=device, weights_dir=weights_dir)
            prototypes[name].load()
        except Exception as err:  # noqa: BLE001 - a corrupt file or a bad package is "not computed", not a crash
            prototypes.pop(name, None)
            unavailable[name] = reason_of(err)
    entries: dict[str, list[tuple[int, str, ClipEntry]]] = {name: [] for name in names}
    per_clip: list[dict] = []
    for sample in samples:
        row: dict = {"clip_id": sample.clip_id, "num_frames": sample.num_frames}
        for name in names:
            row[name] = None
            if name not in prototypes:
                continue
            try:
                entry = score_clip(prototypes[name], sample, str(prototypes[name].version))
            except MetricUnavailable as err:  # raised lazily (a package needed only now): stop this metric
                unavailable[name] = reason_of(err)
                del prototypes[name]
                continue
            entries[name].append((sample.num_frames, sample.clip_id, entry))
            row[name] = entry.value
            if entry.reason:
                row[f"{name}_reason"] = f"not computed: {entry.reason}"
        per_clip.append(row)
        if progress is not None:
            progress(1)
    group_names = sorted({str(row["num_frames"]) for row in per_clip}, key=int)
    summary = []
    for name in names:
        if name in unavailable:
            results = {group: MetricResult(None, 0, unavailable[name]) for group in [ALL_GROUP, *group_names]}
        else:
            results = {group: outcome.result for group, outcome in group_results(name, entries[name]).items()}
        for group in [ALL_GROUP, *group_names]:
            summary.append(
                result_row(name, group, results.get(group, MetricResult(None, 0, "no clips in this group")))
            )
    return SuiteResult(per_clip=per_clip, summary=summary)
