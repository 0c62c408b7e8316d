"""`sfi-data stats`: the dataset card (Markdown) and its plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_data.app import app
from sfi_data.commands.progress import console


@app.command()
def stats(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset root holding the manifests.")],
) -> None:
    """Write DIR/DATASET_CARD.md with plots under DIR/stats/ (scores, scales, fps/duration/resolution, rejects)."""
    from sfi_data.stats import write_card

    try:
        card = write_card(out)
    except FileNotFoundError as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(2) from error
    console.print(f"dataset card: {card}  (plots in {card.parent / 'stats'})")
