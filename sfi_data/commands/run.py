"""`sfi-data run PIPELINE.yaml`: filter -> cut -> caption -> split -> stats from one config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sfi_data.app import app
from sfi_data.commands.progress import console, progress_bar


def _brief(summary: dict) -> str:
    keys = ("total", "skipped", "processed", "ok", "failed", "num_test_clips", "num_train_clips", "card")
    return ", ".join(f"{k}={summary[k]}" for k in keys if summary.get(k) not in (None, {}))


@app.command("run")
def run_command(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline file, e.g. pipelines/sfi300k.yaml.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Dataset folder (default: the file's `out`).")
    ] = None,
    only: Annotated[str | None, typer.Option(help="Run only these steps, e.g. caption,stats.")] = None,
    start_at: Annotated[str | None, typer.Option("--from", help="Start the chain at this step.")] = None,
    force: Annotated[bool, typer.Option(help="Run steps that already finished with these settings.")] = False,
) -> None:
    """Run the chain of a pipeline file; rerunning resumes (finished steps and finished work are skipped)."""
    from sfi_core.weights import WeightsMissingError
    from sfi_data.pipeline import NothingToDoError
    from sfi_data.run_pipeline import load_pipeline, run_pipeline

    try:
        spec = load_pipeline(pipeline)
    except (FileNotFoundError, ValueError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(2) from error
    table = Table(title=f"sfi-data run {pipeline}")
    for column in ("step", "status", "seconds", "summary"):
        table.add_column(column)

    def on_step(outcome) -> None:
        colour = {"done": "green", "skipped": "cyan", "incomplete": "yellow"}.get(outcome.status, "red")
        console.print(f"[bold]{outcome.name}[/]: [{colour}]{outcome.status}[/] {_brief(outcome.summary)}")
        table.add_row(outcome.name, outcome.status, f"{outcome.seconds:.1f}", _brief(outcome.summary))

    steps = [s for s in only.split(",") if s.strip()] if only else None
    try:
        run_pipeline(spec, out, steps, start_at, force, progress_bar, on_step)
    except (WeightsMissingError, NothingToDoError, FileNotFoundError, ValueError) as error:
        console.print(table)
        console.print(
            f"[bold red]error:[/] {error}\nFix it and rerun the same command: finished work is kept."
        )
        raise typer.Exit(1) from error
    console.print(table)
