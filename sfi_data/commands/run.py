"""`sfi-data run PIPELINE.yaml`: (scenes ->) filter -> cut -> caption -> split -> stats from one config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sfi_data.app import app
from sfi_data.commands.options import Overwrite, exit_code_for, fail
from sfi_data.commands.progress import console, progress_bar


def _brief(summary: dict) -> str:
    keys = (
        "total",
        "skipped",
        "retried",
        "processed",
        "ok",
        "failed",
        "num_test_clips",
        "num_train_clips",
        "card",
    )
    return ", ".join(f"{k}={summary[k]}" for k in keys if summary.get(k) not in (None, {}))


@app.command("run")
def run_command(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline file, e.g. pipelines/sfi300k.yaml.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Dataset folder (default: the file's `out`).")
    ] = None,
    only: Annotated[str | None, typer.Option(help="Run only these steps, e.g. caption,stats.")] = None,
    start_at: Annotated[str | None, typer.Option("--from", help="Start the chain at this step.")] = None,
    overwrite: Overwrite = None,
) -> None:
    """Run the chain of a pipeline file; rerunning resumes (every step keeps its finished work).

    The whole file is checked before the first step runs; settings that differ from the finished work
    in the dataset folder are refused (rerun with --overwrite, or use another --out).
    """
    from sfi_data.run_pipeline import load_pipeline

    try:
        spec = load_pipeline(pipeline)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    run_and_report(
        spec,
        out,
        [s.strip() for s in only.split(",") if s.strip()] if only else None,
        start_at,
        bool(overwrite),
        f"sfi-data run {pipeline}",
    )


def run_and_report(
    spec: dict,
    out: Path | None,
    only: list[str] | None = None,
    start_at: str | None = None,
    overwrite: bool = False,
    title: str = "sfi-data run",
) -> None:
    """Run a checked pipeline with progress bars, a line per step and a closing table; errors in one line."""
    from sfi_core.driver import NothingToDoError, SettingsChangedError
    from sfi_core.weights import WeightsMissingError
    from sfi_data.run_pipeline import run_pipeline

    table = Table(title=title)
    for column in ("step", "status", "seconds", "summary"):
        table.add_column(column)

    def on_step(outcome) -> None:
        colour = {"done": "green", "incomplete": "yellow"}.get(outcome.status, "red")
        console.print(f"[bold]{outcome.name}[/]: [{colour}]{outcome.status}[/] {_brief(outcome.summary)}")
        table.add_row(outcome.name, outcome.status, f"{outcome.seconds:.1f}", _brief(outcome.summary))
        for warning in outcome.summary.get("warnings") or []:
            console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)

    try:
        run_pipeline(spec, out, only, start_at, overwrite, progress_bar, on_step)
    except SettingsChangedError as error:
        fail(str(error))  # its own line says the two ways out
    except (WeightsMissingError, NothingToDoError, FileNotFoundError, ValueError, ImportError) as error:
        console.print(table)
        fail(f"{error} (fix it and rerun the same command: finished work is kept)", exit_code_for(error))
    console.print(table)
