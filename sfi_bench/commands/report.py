"""`sfi-bench report`: a static HTML page (one file + images) comparing ground truth and models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_bench.app import app
from sfi_bench.commands.run import SETUP_ERRORS, console, fail
from sfi_bench.report import build_report


@app.command("report")
def report_command(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run directories (scored ones show per-clip metrics).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file; images go to <name>_files/ beside it.")
    ],
    per_scale: Annotated[int, typer.Option(help="Clips shown per frame count.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the clip sample.")] = 0,
) -> None:
    """Frame strips and animated previews, ground truth and each model side by side; opens offline."""
    try:
        path = build_report(run_dirs, out, per_scale, seed)
    except SETUP_ERRORS as err:
        fail(str(err))
    console.print(f"wrote {path} (+ {path.stem}_files/)")
