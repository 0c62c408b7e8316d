"""`sfi-data categorize`: the content category of every captioned clip (paper Fig. 3a)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_core.cli_errors import fail
from sfi_data.app import app
from sfi_data.commands.options import Address, Executor, NumCpus, run_config
from sfi_data.commands.progress import console
from sfi_data.config_dataset import CategorizeConfig, cli_option

C = CategorizeConfig


@app.command()
def categorize(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset root holding captions.parquet.")],
    categorize_with: Annotated[
        list[str] | None, cli_option(C, "categorize_with", "--categorize-with")
    ] = None,
    model: Annotated[str | None, cli_option(C, "model")] = None,
    concurrency: Annotated[int | None, cli_option(C, "concurrency")] = None,
    timeout: Annotated[float | None, cli_option(C, "timeout_s", "--timeout")] = None,
    max_attempts: Annotated[int | None, cli_option(C, "max_attempts")] = None,
    batch_size: Annotated[int | None, cli_option(C, "batch_size")] = None,
    executor: Executor = None,
    address: Address = None,
    num_cpus: NumCpus = None,
    overwrite: Annotated[bool, cli_option(C, "overwrite")] = False,
) -> None:
    """Write DIR/categories.parquet: one category per captioned clip (keyword taxonomy by default).

    The API key, if the server wants one, comes from SFI_CAPTION_API_KEY (or OPENAI_API_KEY).
    """
    from sfi_core.categories import LABELS
    from sfi_data.categorize import CATEGORIES_MANIFEST, run_categorize
    from sfi_data.commands.progress import progress_bar
    from sfi_data.config_dataset import with_options

    config = with_options(
        CategorizeConfig(),
        categorize_with=categorize_with or None,
        model=model,
        concurrency=concurrency,
        timeout_s=timeout,
        max_attempts=max_attempts,
        batch_size=batch_size,
        overwrite=overwrite or None,
    )
    try:
        run = run_config(executor, address, num_cpus, None, None, None)
        with progress_bar("categorize") as progress:
            summary = run_categorize(out, config, progress, run=run)
    except (FileNotFoundError, ValueError, PermissionError) as error:
        fail(str(error))
    shown = ", ".join(
        f"{LABELS.get(name, name)} {count}"
        for name, count in sorted(summary.counts.items(), key=lambda kv: -kv[1])
    )
    console.print(
        f"categories ({summary.source}) -> {out / CATEGORIES_MANIFEST}: {summary.ok} clips ({shown})"
        + (f"; {summary.failed} failed: {summary.reasons} (rerun to retry them)" if summary.failed else "")
    )
    if summary.total and summary.ok == 0:
        raise typer.Exit(1)
