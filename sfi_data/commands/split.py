"""`sfi-data split`: the SFIBench test split (seeded) and the train manifest without its videos."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from sfi_core.constants import FRAME_COUNTS
from sfi_data.app import app


def parse_scales(text: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise typer.BadParameter(
            f"scales must be comma-separated integers, e.g. 5,9,17; got {text!r}"
        ) from error
    if not scales:
        raise typer.BadParameter("give at least one scale")
    return scales


@app.command()
def split(
    out: Path = typer.Option(..., "--out", help="Dataset root holding clips.parquet (and captions.parquet)."),
    num_videos: int = typer.Option(100, help="Source videos in the test set (each contributes every scale)."),
    seed: int = typer.Option(0, help="Seed of the random choice; the same seed gives the same split."),
    scales: str = typer.Option(",".join(map(str, FRAME_COUNTS)), help="Scales a test video must have."),
    allow_fewer: bool = typer.Option(
        False, help="Take every eligible video when fewer than --num-videos exist."
    ),
) -> None:
    """Write DIR/test.parquet, DIR/train.parquet and DIR/split.json; no test video leaks into train."""
    from sfi_data.split import NotEnoughVideosError, SplitConfig, run_split

    config = SplitConfig(
        num_videos=num_videos, seed=seed, scales=parse_scales(scales), allow_fewer=allow_fewer
    )
    try:
        result = run_split(out, config)
    except (NotEnoughVideosError, FileNotFoundError) as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    Console().print(
        f"test: {len(result.test_videos)} videos, {result.num_test_clips} clips -> {out / 'test.parquet'}\n"
        f"train: {result.num_train_clips} clips -> {out / 'train.parquet'} "
        f"({result.num_excluded_clips} other clips of test videos left out)"
    )
