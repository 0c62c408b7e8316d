"""`sfi-bench convert-wan`: an official Wan2.1 checkpoint folder, written once as a diffusers folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_bench.app import app


@app.command("convert-wan")
def convert_wan_command(
    source: Annotated[
        Path, typer.Argument(help="Official Wan2.1 folder (e.g. `hf download Wan-AI/Wan2.1-I2V-14B-480P`).")
    ],
    target: Annotated[Path, typer.Argument(help="New folder for the diffusers layout.")],
    dtype: Annotated[
        str, typer.Option(help="Transformer and UMT5 dtype on disk (VAE and CLIP stay float32).")
    ] = "bf16",
) -> None:
    """Convert an official Wan2.1 I2V/FLF2V folder to a diffusers folder, so later loads skip the renaming.

    Not needed to run: semfi, wan-flf2v and train read the official folder directly, converting as they
    load. The conversion holds the model once in memory (about 2 bytes per transformer parameter in bf16).
    """
    from sfi_bench.models.semfi.model import pick_dtype
    from sfi_bench.models.semfi.wan_official import convert_official_folder

    try:
        written = convert_official_folder(source, target, pick_dtype(dtype, "cpu"))
    except (ValueError, FileExistsError, FileNotFoundError) as err:  # WeightsMissingError included
        # The message names the file, the folder and how to get it; the generic OSError line would not.
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {written} (diffusers layout, transformer in {dtype}); use it as --weights {written}")
