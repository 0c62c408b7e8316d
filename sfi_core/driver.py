"""The generic stage driver: check the stage's settings, plan unfinished shards, run them, count.

Every stage writes one part file per shard under DIR/work/<stage>/ (atomically), so a run killed at any
moment resumes where it stopped; a manifest is always rebuilt from the parts, the newest rows per key.
Next to the parts lies settings.json, the settings that shaped them: a rerun with other settings is
refused before any work (instead of mixing old and new rows), and later stages read it
(`recorded_settings`) instead of asking the user again. Keys whose rows say `error` are retried.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfi_core.constants import STATUS_OK
from sfi_core.executors import make_executor
from sfi_core.executors.base import ShardResult, plan_shards
from sfi_core.manifest import atomic_path
from sfi_core.memory import release_freed_memory
from sfi_core.shard_plan import plan_table_shards
from sfi_core.stage import Stage

log = logging.getLogger("sfi_data")

LOG_FILE = "sfi-data.log"
SETTINGS_FILE = "settings.json"

# Progress reporting: called with (done_inputs, total_inputs) after each shard.
Progress = Callable[[int, int], None]


class NothingToDoError(RuntimeError):
    """No input could be processed (the CLI exits 1: the work failed, see sfi_core.cli_errors)."""

    exit_code = 1


class SettingsChangedError(ValueError):
    """The finished work of a stage was made with other settings than this run's."""


@dataclass
class StageSummary:
    stage: str
    total: int = 0
    skipped: int = 0  # finished in an earlier run
    processed: int = 0
    seconds: float = 0.0
    retried: int = 0  # inputs whose earlier rows said `error`, run again
    statuses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)  # "status: reason_code" -> count
    warnings: list[str] = field(default_factory=list)

    @property
    def items_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


def reason_kind(reason: str | None) -> str:
    """Reasons with numbers and file names masked (sfi_data.stats still groups so; summaries use codes)."""
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


def parts_dir_for(out_dir: Path, stage_name: str) -> Path:
    return Path(out_dir) / "work" / stage_name


def normalize_settings(settings: dict) -> dict:
    """Settings as they read back from JSON (tuples become lists), so a comparison sees values only."""
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def recorded_settings(out_dir: Path, stage_name: str) -> dict | None:
    """The settings that shaped a stage's finished work in `out_dir`, or None when it has not run."""
    path = parts_dir_for(out_dir, stage_name) / SETTINGS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _flatten(settings: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_settings(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every dotted key whose value differs (missing on one side included)."""
    before, after = _flatten(normalize_settings(old)), _flatten(normalize_settings(new))

    def show(flat: dict, key: str) -> str:
        return json.dumps(flat[key]) if key in flat else "(absent)"

    return [
        f"{key}: {show(before, key)} -> {show(after, key)}"
        for key in sorted(before.keys() | after.keys())
        if key not in before or key not in after or before[key] != after[key]
    ]


def check_settings(out_dir: Path, stage_name: str, settings: dict) -> None:
    """Raise SettingsChangedError (one line: the changed keys and the two ways out) on a mismatch."""
    held = recorded_settings(out_dir, stage_name)
    # Settings recorded by a run that finished no shard guard nothing: there is no work to mix with.
    has_parts = any(parts_dir_for(out_dir, stage_name).glob("part-*.parquet"))
    changes = changed_settings(held, settings) if held is not None and has_parts else []
    if changes:
        raise SettingsChangedError(
            f"{out_dir} holds {stage_name} work done with other settings ({'; '.join(changes)}): "
            f"rerun with --overwrite to redo it, or write to another --out"
        )


def record_settings(out_dir: Path, stage_name: str, settings: dict) -> None:
    path = parts_dir_for(out_dir, stage_name) / SETTINGS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(normalize_settings(settings), indent=2) + "\n", encoding="utf-8")


def prepare_parts(out_dir: Path, stage: Stage, settings: dict, overwrite: bool) -> Path:
    """Empty the stage's parts (--overwrite) or check they were made with `settings`; record them."""
    parts_dir = parts_dir_for(out_dir, stage.name)
    if overwrite and parts_dir.exists():
        shutil.rmtree(parts_dir)
    check_settings(out_dir, stage.name, settings)
    if parts_dir.exists() and recorded_settings(out_dir, stage.name) is None and any(parts_dir.iterdir()):
        log.warning(
            "%s: %s holds parts with no recorded settings; recording this run's", stage.name, parts_dir
        )
    record_settings(out_dir, stage.name, settings)
    return parts_dir


def run_stage(
    stage: Stage,
    rows: list[dict] | pa.Table,
    out_dir: Path,
    schema,
    run,
    progress: Progress | None = None,
    *,
    settings: dict | None = None,
    redo: set[str] | None = None,
) -> StageSummary:
    """Run `stage` over `rows`, keeping keys finished earlier (with the same settings) and retrying errors.

    `redo`: keys to run again although finished (their new part supersedes the old by its generation),
    where `run.overwrite` would empty the whole stage: one slice of an array job redoing its own clips
    must not delete the others'.

    `settings` defaults to `stage.settings()`; a stage that depends on more than its own object (the
    filter's thresholds are applied after the merge, for one) passes what it records itself.
    `rows` may be an Arrow table: its shards are then planned from it and each shard's rows made only
    when an executor takes it, so a list of a million inputs never lives as dicts in the driver.
    """
    settings = stage.settings() if settings is None else settings
    parts_dir = prepare_parts(out_dir, stage, settings, run.overwrite)
    shard_size = run.shard_size or stage.shard_size
    if isinstance(rows, pa.Table):
        if redo:
            raise ValueError("redo takes row lists; a table of inputs is redone with run.overwrite")
        shards = plan_table_shards(rows, stage.key, parts_dir, shard_size)
        skipped = shards.skipped
        had_rows = pa.array(sorted(_keys_with_rows(parts_dir, stage.key)), pa.string())
        retried = pc.sum(pc.is_in(shards.todo.column(stage.key), value_set=had_rows)).as_py() or 0
    else:
        had_rows = _keys_with_rows(parts_dir, stage.key)
        shards, skipped = plan_shards(rows, stage.key, parts_dir, shard_size, redo)
        # Keys run again because their rows said error; a key in `redo` is run again by request.
        failed_before = had_rows - (redo or set())
        retried = sum(row[stage.key] in failed_before for shard in shards for row in shard.rows)
    total = rows.num_rows if isinstance(rows, pa.Table) else len(rows)
    summary = StageSummary(stage.name, total=total, skipped=skipped)
    summary.retried = retried
    start = time.perf_counter()
    done = skipped
    if progress:
        progress(done, total)
    if shards:

        def finished(result: ShardResult) -> None:
            nonlocal done
            summary.processed += result.inputs
            done += result.inputs
            if progress:
                progress(done, total)

        run_shards(stage, shards, schema, run, finished)
        release_freed_memory(force=True)  # what the shards freed, before the caller merges their parts
    summary.seconds = time.perf_counter() - start
    log.info(
        "%s: %d inputs, %d done earlier, %d processed (%d retried after an error) in %.1f s",
        stage.name,
        total,
        skipped,
        summary.processed,
        summary.retried,
        summary.seconds,
    )
    return summary


def run_shards(
    stage: Stage, shards: list, schema, run, on_result: Callable[[ShardResult], None] | None = None
) -> None:
    """Run planned shards on `run.executor` (each writes its part file); `on_result` after each.

    `run_stage` plans the unfinished shards itself; a caller whose unit of resume lies elsewhere (the
    benchmark's per-clip scores) plans its own and runs them through here, on the same executors.
    """
    if not shards:
        return  # nothing pending: no executor (Ray) started for it
    executor = make_executor(run.executor, address=run.address, num_cpus=run.num_cpus, num_gpus=run.num_gpus)
    try:
        for result in executor.map_shards(stage, shards, schema):
            if on_result is not None:
                on_result(result)
    finally:
        executor.close()


def _keys_with_rows(parts_dir: Path, key: str) -> set[str]:
    keys: set[str] = set()
    for part in parts_dir.glob("part-*.parquet"):
        keys.update(pq.read_table(part, columns=[key]).column(key).to_pylist())
    return keys


def count(summary: StageSummary, rows: list[dict]) -> StageSummary:
    """Outputs by status, and the rejects and errors by their stable reason_code."""
    for row in rows:
        summary.statuses[row["status"]] += 1
        if row["status"] != STATUS_OK:
            code = row.get("reason_code") or "unknown"
            summary.reasons[f"{row['status']}: {code}"] += 1
    return summary


def count_table(summary: StageSummary, table: pa.Table) -> StageSummary:
    """`count` over a table's columns: the same counts, first-seen order kept, no row dicts."""
    status = table.column("status")
    for entry in pc.value_counts(status).to_pylist():
        summary.statuses[entry["values"]] += entry["counts"]
    not_ok = table.filter(pc.fill_null(pc.not_equal(status, STATUS_OK), True))
    code = pc.fill_null(
        pc.if_else(pc.equal(not_ok.column("reason_code"), ""), None, not_ok.column("reason_code")), "unknown"
    )
    labels = pc.binary_join_element_wise(pc.fill_null(not_ok.column("status"), "None"), code, ": ")
    for entry in pc.value_counts(labels).to_pylist():
        summary.reasons[entry["values"]] += entry["counts"]
    return summary
