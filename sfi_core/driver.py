"""The generic stage driver: plan shards that have no part file yet, run them on an executor, count.

Every stage writes one part file per shard under DIR/work/<stage>/ (atomically), so a run killed at any
moment resumes where it stopped; a manifest is always rebuilt from the parts, one row per key.
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

from sfi_core.constants import STATUS_OK
from sfi_core.executors import make_executor
from sfi_core.executors.base import ShardResult, plan_shards
from sfi_core.stage import Stage

log = logging.getLogger("sfi_data")

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
    stage: Stage, rows: list[dict], out_dir: Path, schema, run, progress: Progress | None = None
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


def count(summary: StageSummary, rows: list[dict]) -> StageSummary:
    for row in rows:
        summary.statuses[row["status"]] += 1
        if row["status"] != STATUS_OK:
            summary.reasons[f"{row['status']}: {reason_kind(row.get('reason'))}"] += 1
    return summary
