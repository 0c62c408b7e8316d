"""`sfi-bench leaderboard`: Tables 2/A1/A2 from scored run directories (CSV, Markdown, plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_bench.app import app
from sfi_bench.commands.run import SETUP_ERRORS, console, fail
from sfi_bench.leaderboard import load_leaderboard, markdown, write_csv, write_markdown, write_plots


@app.command("leaderboard")
def leaderboard_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Scored run directories, one per model.")],
    csv: Annotated[
        Path, typer.Option("--csv", help="CSV: model x {All, 5, ..., 81} plus log10-variance rows.")
    ],
    md: Annotated[Path | None, typer.Option("--md", help="Markdown with best/second/third marked.")] = None,
    plots: Annotated[
        Path | None, typer.Option("--plots", help="Folder for one PNG per metric (value vs N).")
    ] = None,
) -> None:
    """Rank the models; metrics that could not run are empty cells with the reason, never 0."""
    try:
        board = load_leaderboard(run_dirs)
    except SETUP_ERRORS as err:
        fail(str(err))
    write_csv(board, csv)
    console.print(f"wrote {csv}")
    if md is not None:
        write_markdown(board, md)
        console.print(f"wrote {md}")
    else:
        typer.echo(markdown(board))
    if plots is not None:
        written = write_plots(board, plots)
        console.print(f"wrote {len(written)} plot(s) to {plots}")
