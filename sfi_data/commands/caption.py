"""`sfi-data caption`: dense captions for every clip through one or more vLLM servers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sfi_core.cli_errors import fail
from sfi_data.app import app
from sfi_data.captioning import CaptionConfig, CaptionSummary
from sfi_data.commands.options import Address, Executor, NumCpus, run_config
from sfi_data.commands.progress import console
from sfi_data.config_dataset import cli_option

C = CaptionConfig


def print_caption_summary(summary: CaptionSummary, out: Path) -> None:
    table = Table(title=f"captions -> {out / 'captions.parquet'}")
    for column in ("clips", "done earlier", "captioned", "failed", "clips/s", "tokens/clip"):
        table.add_column(column, justify="right")
    tokens = (summary.prompt_tokens + summary.completion_tokens) / summary.ok if summary.ok else 0.0
    table.add_row(
        str(summary.total),
        str(summary.skipped),
        str(summary.ok),
        str(summary.failed),
        f"{summary.clips_per_s:.2f}",
        f"{tokens:.0f}",
    )
    console.print(table)
    for code, count in summary.reasons.most_common(8):
        example = escape(summary.examples.get(code, "")[:160])  # reasons may hold [brackets]
        console.print(f"  [yellow]{count} failed:[/] {code}" + (f" (e.g. {example})" if example else ""))
    if summary.failed:
        console.print(
            f"The reasons are in {out / 'captions.parquet'} (column reason). Rerun the same command to "
            "retry the failed clips (captioned ones are kept)."
        )


@app.command()
def caption(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset root holding clips.parquet.")],
    api_base: Annotated[list[str] | None, cli_option(C, "api_bases", "--api-base")] = None,
    model: Annotated[str | None, cli_option(C, "model")] = None,
    prompt: Annotated[Path | None, cli_option(C, "prompt")] = None,
    frames: Annotated[int | None, cli_option(C, "frames")] = None,
    max_side: Annotated[int | None, cli_option(C, "max_side")] = None,
    concurrency: Annotated[int | None, cli_option(C, "concurrency")] = None,
    timeout: Annotated[float | None, cli_option(C, "timeout_s", "--timeout")] = None,
    max_attempts: Annotated[int | None, cli_option(C, "max_attempts")] = None,
    max_tokens: Annotated[int | None, cli_option(C, "max_tokens")] = None,
    batch_size: Annotated[int | None, cli_option(C, "batch_size")] = None,
    reader: Annotated[str | None, cli_option(C, "reader")] = None,
    executor: Executor = None,
    address: Address = None,
    num_cpus: NumCpus = None,
    scales: Annotated[str | None, typer.Option(help="Only clips of these scales, e.g. 5,81.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N clips (a trial run).")] = None,
    overwrite: Annotated[bool, cli_option(C, "overwrite")] = False,
) -> None:
    """Caption every clip of DIR/clips.parquet into DIR/captions.parquet (resumable).

    The API key, if the server wants one, comes from SFI_CAPTION_API_KEY (or OPENAI_API_KEY).
    """
    from sfi_data.captioning import run_captions
    from sfi_data.commands.progress import progress_bar
    from sfi_data.commands.split import parse_scales
    from sfi_data.config_dataset import with_options

    config = with_options(
        CaptionConfig(),
        api_bases=api_base or None,
        model=model,
        prompt=str(prompt) if prompt else None,
        frames=frames,
        max_side=max_side,
        concurrency=concurrency,
        timeout_s=timeout,
        max_attempts=max_attempts,
        max_tokens=max_tokens,
        batch_size=batch_size,
        reader=reader,
        overwrite=overwrite or None,
    )
    chosen = list(parse_scales(scales)) if scales else None
    try:
        run = run_config(executor, address, num_cpus, None, None, None)
        with progress_bar("caption") as progress:
            summary = run_captions(out, config, progress, scales=chosen, limit=limit, run=run)
    except (FileNotFoundError, ValueError, PermissionError) as error:
        fail(str(error))
    print_caption_summary(summary, out)
    if summary.total and summary.failed == summary.total - summary.skipped and summary.ok == 0:
        raise typer.Exit(1)
