"""`sfi-data scenes`: split long raw videos into single-shot segments before the filter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from sfi_core.driver import NothingToDoError
from sfi_data.app import app
from sfi_data.commands.options import (
    Address,
    Config,
    Executor,
    Inputs,
    ListFile,
    NumCpus,
    Out,
    Overwrite,
    ShardSize,
    exit_code_for,
    fail,
    given,
    off_when_zero,
    run_config,
)
from sfi_data.commands.progress import console, progress_bar, show_summary
from sfi_data.config import ScenesConfig, apply_overrides, load_yaml
from sfi_data.config_dataset import cli_option
from sfi_data.scenes import SCENES_MANIFEST, run_scenes

S = ScenesConfig


@app.command("scenes")
def scenes_command(
    inputs: Inputs = None,
    out: Out = Path("sfi_out"),
    list_file: ListFile = None,
    detector: Annotated[str | None, cli_option(S, "detector")] = None,
    threshold: Annotated[float | None, cli_option(S, "threshold")] = None,
    min_scene_len: Annotated[int | None, cli_option(S, "min_scene_len")] = None,
    max_segment_frames: Annotated[int | None, cli_option(S, "max_segment_frames")] = None,
    decode_width: Annotated[int | None, cli_option(S, "decode_width")] = None,
    write_segments: Annotated[
        bool | None, cli_option(S, "write_segments", "--write-segments/--virtual-segments")
    ] = None,
    config: Config = None,
    executor: Executor = None,
    address: Address = None,
    num_cpus: NumCpus = None,
    shard_size: ShardSize = None,
    overwrite: Overwrite = None,
) -> None:
    """Detect shot boundaries and write one row per single-shot segment -> scenes.parquet.

    Then: `sfi-data filter --scenes DIR --out DIR` filters the segments like any other videos.
    """
    if not inputs and not list_file:
        fail("give at least one INPUT or --list")
    try:
        file = load_yaml(config) if config else {}
        settings = apply_overrides(ScenesConfig(), file.get("scenes"), "scenes.")
        settings = apply_overrides(
            settings,
            given(
                detector=detector,
                threshold=threshold,
                min_scene_len=min_scene_len,
                decode_width=decode_width,
                write_segments=write_segments,
            )
            | off_when_zero(max_segment_frames=max_segment_frames),
        )
        run = run_config(executor, address, num_cpus, None, shard_size, overwrite, file.get("run"))
    except ValueError as error:
        fail(str(error))
    try:
        with progress_bar("scenes") as progress:
            summary = run_scenes(list(inputs or []), out, settings, run, list_file or [], progress)
    except (ImportError, NothingToDoError, FileNotFoundError, ValueError) as error:
        fail(str(error), exit_code_for(error))
    show_summary(summary, "videos", "segments")
    console.print(
        f"wrote {out / SCENES_MANIFEST}; next: sfi-data filter --scenes {out} --out {out}; "
        f"log: {out / 'sfi-data.log'}"
    )
