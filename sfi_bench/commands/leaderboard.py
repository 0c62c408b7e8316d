"""`sfi-bench leaderboard`: Tables 2/A1/A2 from scored run directories (CSV, results JSON, Markdown, plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_bench.app import app
from sfi_bench.commands.run import SETUP_ERRORS, console, fail
from sfi_bench.leaderboard import (
    leaderboard_from_runs,
    load_runs,
    markdown,
    sort_models,
    write_csv,
    write_markdown,
)
from sfi_bench.plots import write_plots
from sfi_bench.results import write_results


@app.command("leaderboard")
def leaderboard_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Scored run directories, one per model.")],
    csv: Annotated[
        Path,
        typer.Option("--csv", help="CSV: model x {All, 5, ..., 81}, metric ids as headers, log10-var rows."),
    ],
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Results JSON (default: the CSV's name with .json): definitions, errors, provenance.",
        ),
    ] = None,
    md: Annotated[Path | None, typer.Option("--md", help="Markdown with best/second/third marked.")] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Folder for one PNG and one SVG per metric.")
    ] = None,
    allow_mixed: Annotated[
        bool, typer.Option(help="Rank runs scored on different test clips together (the table says so).")
    ] = False,
    sort_by: Annotated[
        str | None,
        typer.Option(help="Order the models by this metric (id or name), best first, e.g. psnr_all."),
    ] = None,
) -> None:
    """Rank the models; metrics that could not run are empty cells with the reason, never 0."""
    try:
        runs = load_runs(run_dirs)
        board = leaderboard_from_runs(runs, allow_mixed)
        if sort_by:
            sort_models(board, sort_by)
    except SETUP_ERRORS as err:
        fail(str(err))
    write_csv(board, csv)
    json_path = json_path or csv.with_suffix(".json")
    write_results(board, runs, json_path)
    console.print(f"wrote {csv} and {json_path}")
    if md is not None:
        write_markdown(board, md)
        console.print(f"wrote {md}")
    else:
        typer.echo(markdown(board))
    if plots is not None:
        written = write_plots(board, plots)
        console.print(f"wrote {len(written)} plot file(s) to {plots}")
