"""`sfi-data stats`: the dataset card (Markdown) and its plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_core.cli_errors import fail
from sfi_data.app import app
from sfi_data.commands.progress import console
from sfi_data.config_dataset import StatsConfig, cli_option


@app.command()
def stats(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset root holding the manifests.")],
    plots: Annotated[bool, cli_option(StatsConfig, "plots")] = True,
    samples: Annotated[int | None, cli_option(StatsConfig, "samples")] = None,
    reader: Annotated[str | None, cli_option(StatsConfig, "reader")] = None,
) -> None:
    """Write DIR/DATASET_CARD.md with plots under DIR/stats/ (scores, scales, sources, rejects, split)."""
    from sfi_data.config_dataset import with_options
    from sfi_data.stats import write_card

    config = with_options(StatsConfig(), plots=plots, samples=samples, reader=reader)
    try:
        card = write_card(out, config=config)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    console.print(f"dataset card: {card}  (plots in {card.parent / 'stats'})")
