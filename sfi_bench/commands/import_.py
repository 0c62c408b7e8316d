"""`sfi-bench import`: store videos made elsewhere (GI, FCVG, Kling...) as a run directory to score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_bench.app import app
from sfi_bench.commands.run import SETUP_ERRORS, console, fail, summary_table
from sfi_bench.importer import import_outputs


@app.command("import")
def import_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Name to show in tables (e.g. kling).")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder with {clip_id}.mp4 files or {clip_id}/ frames.")
    ],
    clips: Annotated[Path, typer.Option(help="The test manifest the videos were made for.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to create.")],
    store: Annotated[str, typer.Option(help="Lossless frame store: ffv1 or png.")] = "ffv1",
    resample: Annotated[
        str, typer.Option(help="nearest or linear, when a video's length is not N.")
    ] = "nearest",
    overwrite: Annotated[bool, typer.Option(help="Re-import finished clips too.")] = False,
) -> None:
    """Bring outside outputs in: resampled to N and resized to the clip where needed (recorded per clip)."""
    try:
        summary = import_outputs(model, directory, clips, out, store, resample, overwrite)
    except SETUP_ERRORS as err:
        fail(str(err))
    console.print(summary_table(summary, f"sfi-bench import --model {model} -> {out}"))
