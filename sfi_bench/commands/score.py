"""`sfi-bench score`: the metric suite over one or more run directories (per-clip and per-scale Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sfi_bench.app import app
from sfi_bench.commands.run import (
    SETUP_ERRORS,
    AddressOption,
    ExecutorOption,
    GpusOption,
    ShardOption,
    WorkersOption,
    console,
    fail,
    parallel_config,
)
from sfi_bench.leaderboard import ALL_GROUP, format_value
from sfi_bench.score_run import ScoreOutputs, score_run


def scores_table(run_dir: Path, outputs: ScoreOutputs) -> tuple[Table, list[str]]:
    """The All-group value of every metric of the run, this call's first; reasons as numbered notes."""
    table = Table(title=f"sfi-bench score {run_dir}")
    table.add_column("metric (id)", overflow="fold")
    for column in ("value", "± stderr", "clips"):
        table.add_column(column, justify="right")
    table.add_column("scored")
    table.add_column("status")
    rows = [r for r in outputs.summary if r["group"] == ALL_GROUP]
    rows.sort(key=lambda r: r["metric"] not in outputs.requested)
    reasons: list[str] = []
    for row in rows:
        status = "ok"
        if row["reason"]:  # not computed, or computed on the clips that did not fail
            reason = " ".join(str(row["reason"]).split())
            if reason not in reasons:
                reasons.append(reason)
            kind = "not computed" if row["value"] is None else "partial"
            status = f"{kind} [{reasons.index(reason) + 1}]"
        name = row["metric"] if row["id"] == row["metric"] else f"{row['metric']} ({row['id']})"
        table.add_row(
            name,
            format_value(row["value"]),
            format_value(row.get("stderr")),
            f"{row['clips_scored']}/{row['clips_in_test']}",
            "now" if row["metric"] in outputs.requested else "earlier",
            status,
        )
    return table, [f"[{number}] {reason}" for number, reason in enumerate(reasons, 1)]


@app.command("score")
def score_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories from `sfi-bench run`/`import`.")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="Add or replace these metrics (repeatable; default: the Table 2 set)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    weights_dir: Annotated[Path | None, typer.Option(help="Folder holding metric weight files.")] = None,
    shard: ShardOption = None,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    gpus_per_worker: GpusOption = None,
    address: AddressOption = None,
    overwrite: Annotated[
        bool, typer.Option(help="Recompute the requested metrics on every clip (other metrics are kept).")
    ] = False,
) -> None:
    """Writes RUNDIR/scores_clips.parquet, scores_summary.parquet and scores.json; prints what it computed.

    Metrics scored earlier are kept. Exits 1 when none of the requested metrics could be computed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    parallel = parallel_config(shard, executor, workers, gpus_per_worker, address)
    nothing: list[str] = []
    for run_dir in run_dirs:
        columns = (
            *Progress.get_default_columns()[:1],
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"score {run_dir.name}", total=None)
            try:
                outputs = score_run(
                    run_dir,
                    metric or None,
                    device,
                    str(weights_dir) if weights_dir else None,
                    progress=lambda done, total, task=task: bar.update(task, completed=done, total=total),
                    parallel=parallel,
                    overwrite=overwrite,
                )
            except SETUP_ERRORS as err:
                fail(f"{run_dir}: {err}")
        table, notes = scores_table(run_dir, outputs)
        console.print(table)
        for note in notes:
            console.print(note, style="dim", highlight=False)
        if not any(outputs.computed(name) for name in outputs.requested):
            nothing.append(str(run_dir))
    if shard:
        console.print(
            f"shard {shard} done. After every shard has finished, run the same command without --shard "
            "once: it finds every clip scored and merges the tables."
        )
    if nothing:
        fail(
            f"none of the requested metrics could be computed for {', '.join(nothing)} (reasons above)",
            code=1,
        )
