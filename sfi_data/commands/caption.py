"""`sfi-data caption`: dense captions for every clip through one or more vLLM servers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from sfi_data.app import app
from sfi_data.captioning import DEFAULT_MODEL, DEFAULT_PROMPT, CaptionConfig, CaptionSummary
from sfi_data.commands.progress import console, progress_bar


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
    for reason, count in summary.reasons.most_common(8):
        console.print(f"  [yellow]{count} failed:[/] {reason}")
    if summary.failed:
        console.print("Rerun the same command to retry the failed clips (captioned ones are skipped).")


@app.command()
def caption(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset root holding clips.parquet.")],
    api_base: Annotated[
        list[str] | None,
        typer.Option(help="OpenAI-compatible base URL of a vLLM server; repeat for round-robin."),
    ] = None,
    model: Annotated[str, typer.Option(help="Model name the server serves.")] = DEFAULT_MODEL,
    prompt: Annotated[Path, typer.Option(help="Versioned prompt file (YAML).")] = DEFAULT_PROMPT,
    frames: Annotated[int, typer.Option(help="Frames sent per clip, first and last included.")] = 8,
    max_side: Annotated[int, typer.Option(help="Longest side of each frame sent, in pixels.")] = 448,
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds per request before it is retried.")] = 180.0,
    max_attempts: Annotated[
        int, typer.Option(help="Tries per clip (429/5xx/timeouts/refused are retried).")
    ] = 6,
    max_tokens: Annotated[int, typer.Option(help="Longest caption, in tokens.")] = 512,
    scales: Annotated[str | None, typer.Option(help="Only clips of these scales, e.g. 5,81.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N clips (a trial run).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Caption every clip again.")] = False,
) -> None:
    """Caption every clip of DIR/clips.parquet into DIR/captions.parquet (resumable).

    The API key, if the server wants one, comes from SFI_CAPTION_API_KEY (or OPENAI_API_KEY).
    """
    from sfi_data.captioning import run_captions
    from sfi_data.commands.split import parse_scales

    config = CaptionConfig(
        api_bases=api_base or ["http://localhost:8000/v1"],
        model=model,
        prompt=str(prompt),
        frames=frames,
        max_side=max_side,
        concurrency=concurrency,
        timeout_s=timeout,
        max_attempts=max_attempts,
        max_tokens=max_tokens,
        overwrite=overwrite,
    )
    chosen = list(parse_scales(scales)) if scales else None
    try:
        with progress_bar("caption") as progress:
            summary = run_captions(out, config, progress, scales=chosen, limit=limit)
    except (FileNotFoundError, ValueError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(2) from error
    print_caption_summary(summary, out)
    if summary.total and summary.failed == summary.total - summary.skipped and summary.ok == 0:
        raise typer.Exit(1)
