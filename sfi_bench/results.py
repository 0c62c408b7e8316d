"""The results JSON beside the leaderboard: every number with its definition, uncertainty and provenance.

Shaped after lm-evaluation-harness's results files: `results` (per model, per metric id, per group:
value, standard error, bootstrap 95 % interval, clips and samples), `configs` (model, options, weights
checksums, seed, test set), `metrics` (definitions and versions), `environment` (packages, git commit,
host, GPU of each scoring). It validates against sfi_bench/schemas/results.schema.json.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sfi_bench.leaderboard import Leaderboard, RunScores, cap_notes, mixed_note

SCHEMA_VERSION = 1


def load_schema() -> dict[str, Any]:
    text = resources.files("sfi_bench.schemas").joinpath("results.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def _weight_checksums(run: RunScores) -> dict[str, str]:
    """Digests the model reported for its weight files (in each clip's info), where it reports them."""
    import pyarrow.parquet as pq

    path = run.run_dir / "generations.parquet"
    found: dict[str, str] = {}
    if not path.is_file():
        return found
    table = pq.read_table(path)
    if "info" not in table.column_names:
        return found
    for text in table.column("info").to_pylist():
        for key, value in json.loads(text or "{}").items():
            if "sha256" in key and isinstance(value, str):
                found[key] = value
    return found


def _config(run: RunScores) -> dict[str, Any]:
    info = run.info
    return {
        "kind": info.get("kind", "run"),
        "model_class": info.get("model_class"),
        "model_version": str(info.get("model_version") or ""),
        "model_options": info.get("model_options") or {},
        "weights": info.get("weights"),
        "weight_checksums": _weight_checksums(run),
        "seed": info.get("seed"),
        "device": info.get("device"),
        "store_format": info.get("store_format"),
        "resample_mode": info.get("resample_mode"),
        "clips_manifest": info.get("clips_manifest"),
        "clip_set": run.clip_set,
        "run_dir": str(run.run_dir.resolve()),
    }


def _finite(value: float | None) -> float | None:
    """JSON has no infinities: a non-finite value is written as null (the CSV keeps "inf")."""
    return value if value is None or math.isfinite(value) else None


def _model_results(board: Leaderboard, model: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in board.metrics:
        groups = {}
        for group in board.groups:
            key = (model, group, metric.name)
            if key not in board.values:
                continue
            stats = board.stats.get(key, {})
            groups[group] = {
                "value": _finite(board.values[key]),
                "stderr": stats.get("stderr"),
                "ci95": stats.get("ci95"),
                "clips_scored": board.clips_scored.get(key, 0),
                "clips_in_test": board.clips_in_test.get((model, group)),
                "num_samples": stats.get("num_samples", 0),
            }
        if groups:
            out[metric.id] = groups
    return out


def build_results(board: Leaderboard, runs: list[RunScores]) -> dict[str, Any]:
    import sfi_bench

    by_model = {run.model: run for run in runs}
    definitions: dict[str, Any] = {}
    for run in runs:
        for definition in (run.scores.get("definitions") or {}).values():
            definitions.setdefault(definition["id"], definition)
    for metric in board.metrics:
        definitions.setdefault(
            metric.id,
            {
                "id": metric.id,
                "name": metric.name,
                "label": metric.label,
                "direction": metric.direction,
                "version": metric.version,
                "category": metric.category,
                "cap": metric.cap,
            },
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "sfi_bench_version": sfi_bench.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "mixed_clip_sets": board.mixed,
        "models": list(board.models),
        "groups": list(board.groups),
        "results": {model: _model_results(board, model) for model in board.models},
        "not_computed": {
            model: {
                m.id: board.reasons[(model, m.name)]
                for m in board.metrics
                if (model, m.name) in board.reasons
            }
            for model in board.models
        },
        "configs": {model: _config(by_model[model]) for model in board.models if model in by_model},
        "metrics": definitions,
        "versions": {metric_id: str(d.get("version")) for metric_id, d in definitions.items()},
        "environment": {
            model: by_model[model].scores.get("environment") or {}
            for model in board.models
            if model in by_model
        },
        "footnotes": ([mixed_note(board)] if board.mixed else []) + cap_notes(board),
    }


def write_results(board: Leaderboard, runs: list[RunScores], path: Path) -> dict[str, Any]:
    document = build_results(board, runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, default=str, allow_nan=False), encoding="utf-8")
    return document
