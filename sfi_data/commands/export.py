"""`sfi-data export`: the split as training shards (WebDataset tars, or a 🤗 datasets folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_core.cli_errors import fail
from sfi_data.app import app
from sfi_data.commands.options import Address, Executor, NumCpus, run_config
from sfi_data.commands.progress import console
from sfi_data.config_dataset import ExportConfig, cli_option

E = ExportConfig


@app.command()
def export(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Dataset root holding train.parquet / test.parquet.")
    ],
    dest: Annotated[Path, typer.Option("--dest", help=E.__dataclass_fields__["dest"].metadata["help"])],
    format: Annotated[str | None, cli_option(E, "format")] = None,  # noqa: A002 - the option's name
    split: Annotated[str | None, cli_option(E, "split")] = None,
    shard_size: Annotated[int | None, cli_option(E, "shard_size")] = None,
    max_shard_bytes: Annotated[int | None, cli_option(E, "max_shard_bytes")] = None,
    license: Annotated[str | None, cli_option(E, "license")] = None,  # noqa: A002
    executor: Executor = None,
    address: Address = None,
    num_cpus: NumCpus = None,
    overwrite: Annotated[bool, cli_option(E, "overwrite")] = False,
) -> None:
    """Write DEST/{split}-{000000}.tar shards and DEST/{split}-index.json (resumable, byte-identical reruns).

    --format hf writes DEST/data/*.tar and DEST/README.md, a Hub dataset card: datasets.load_dataset(DEST).
    """
    from sfi_data.commands.progress import progress_bar
    from sfi_data.config_dataset import with_options
    from sfi_data.export import run_export

    config = with_options(
        ExportConfig(),
        dest=str(dest),
        format=format,
        split=split,
        shard_size=shard_size,
        max_shard_bytes=max_shard_bytes,
        license=license,
        overwrite=overwrite or None,
    )
    try:
        run = run_config(executor, address, num_cpus, None, None, None)
        with progress_bar("export") as progress:
            summary = run_export(out, config, progress, run=run)
    except (FileNotFoundError, ValueError, PermissionError) as error:
        fail(str(error))
    rate = summary.bytes / summary.seconds / 1e6 if summary.seconds > 0 and summary.written else float("nan")
    console.print(
        f"{summary.format}: {summary.samples} clips in {summary.shards} shards ({summary.bytes / 1e6:.1f} MB) -> "
        f"{dest}; {summary.written} written, {summary.skipped} done earlier"
        + (f", {rate:.0f} MB/s" if summary.written else "")
        + (f"; index: {', '.join(summary.indexes)}" if summary.indexes else "")
    )
    for reason in summary.reasons[:8]:
        console.print(f"  [yellow]not written:[/] {reason}")
    if summary.failed:
        console.print("Fix the cause and rerun the same command: written shards are kept.")
        raise typer.Exit(1)
