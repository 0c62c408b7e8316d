"""`sfi-bench score`: the metric suite over one or more run directories (per-clip and per-scale Parquet)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_bench.app import app
from sfi_bench.commands.run import SETUP_ERRORS, console, fail
from sfi_bench.runner import score_run
from sfi_bench.storage import STATUS_OK, FrameStore


@app.command("score")
def score_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories from `sfi-bench run`/`import`.")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="Only these metrics (repeatable; default: the Table 2 set)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    weights_dir: Annotated[Path | None, typer.Option(help="Folder holding metric weight files.")] = None,
) -> None:
    """Writes RUNDIR/scores_clips.parquet and RUNDIR/scores_summary.parquet; missing weights -> 'not computed'."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    for run_dir in run_dirs:
        total = sum(1 for r in FrameStore(run_dir).records() if r.status == STATUS_OK)
        columns = (
            *Progress.get_default_columns()[:1],
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"score {run_dir.name}", total=total)
            try:
                outputs = score_run(
                    run_dir,
                    metric or None,
                    device,
                    str(weights_dir) if weights_dir else None,
                    progress=lambda n, task=task: bar.advance(task, n),
                )
            except SETUP_ERRORS as err:
                fail(f"{run_dir}: {err}")
        console.print(
            f"{run_dir}: {outputs.num_scored} clip(s) scored -> {outputs.summary_path.name}, {outputs.clips_path.name}"
        )
