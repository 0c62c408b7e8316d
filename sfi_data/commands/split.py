"""`sfi-data split`: the SFIBench test split (seeded) and the train manifest without its videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sfi_core.cli_errors import fail
from sfi_data.app import app
from sfi_data.commands.options import Address, Executor, NumCpus, run_config
from sfi_data.config_dataset import SplitConfig, cli_option

S = SplitConfig


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
    out: Annotated[
        Path, typer.Option("--out", help="Dataset root holding clips.parquet (and captions.parquet).")
    ],
    num_videos: Annotated[int | None, cli_option(S, "num_videos")] = None,
    seed: Annotated[int | None, cli_option(S, "seed")] = None,
    scales: Annotated[str | None, cli_option(S, "scales")] = None,
    allow_fewer: Annotated[bool, cli_option(S, "allow_fewer")] = False,
    near_duplicates: Annotated[bool, cli_option(S, "near_duplicates")] = True,
    hash_frames: Annotated[int | None, cli_option(S, "hash_frames")] = None,
    hash_max_distance: Annotated[int | None, cli_option(S, "hash_max_distance")] = None,
    reader: Annotated[str | None, cli_option(S, "reader")] = None,
    executor: Executor = None,
    address: Address = None,
    num_cpus: NumCpus = None,
    stratify: Annotated[str | None, cli_option(S, "stratify")] = None,
) -> None:
    """Write DIR/test.parquet, DIR/train.parquet and DIR/split.json; no test footage leaks into train."""
    from sfi_data.config_dataset import with_options
    from sfi_data.split import run_split

    config = with_options(
        SplitConfig(),
        num_videos=num_videos,
        seed=seed,
        scales=parse_scales(scales) if scales else None,
        allow_fewer=allow_fewer,
        near_duplicates=near_duplicates,
        hash_frames=hash_frames,
        hash_max_distance=hash_max_distance,
        reader=reader,
        stratify=stratify,
    )
    try:
        run = run_config(executor, address, num_cpus, None, None, None)
        result = run_split(out, config, run=run)
    except (ValueError, FileNotFoundError) as error:
        fail(str(error))
    groups = result.near_duplicate_groups
    Console().print(
        f"test: {len(result.test_videos)} videos, {result.num_test_clips} clips -> {out / 'test.parquet'}\n"
        f"train: {result.num_train_clips} clips -> {out / 'train.parquet'} "
        f"({result.num_excluded_clips} other clips of tested footage left out)\n"
        f"near-duplicate groups: {len(groups)} ({sum(map(len, groups))} videos), kept on one side each"
        + (f"; {len(result.unhashed_videos)} videos could not be hashed" if result.unhashed_videos else "")
    )
