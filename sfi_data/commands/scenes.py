"""`sfi-data scenes`: split long raw videos into single-shot segments before the filter."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    fail,
    run_config,
)
from sfi_data.commands.progress import console, progress_bar, summary_table
from sfi_data.config import F_MAX, ScenesConfig, apply_overrides, load_yaml
from sfi_data.pipeline import NothingToDoError
from sfi_data.scenes import SCENES_MANIFEST, run_scenes
from sfi_data.stages.scenes import DETECTORS


@app.command("scenes")
def scenes_command(
    inputs: Inputs = None,
    out: Out = Path("sfi_out"),
    list_file: ListFile = None,
    detector: Annotated[
        str, typer.Option(help=f"PySceneDetect detector: {', '.join(DETECTORS)}.")
    ] = "content",
    threshold: Annotated[
        float | None,
        typer.Option(help="Detector threshold (default: the detector's own; content 27, adaptive 3)."),
    ] = None,
    min_scene_len: Annotated[int, typer.Option(help="Shortest shot in frames; shorter ones merge.")] = 15,
    max_segment_frames: Annotated[
        int, typer.Option(help="Split longer shots into near-equal windows (0: never).")
    ] = 4 * F_MAX,
    decode_width: Annotated[int, typer.Option(help="Width the frames are scaled to for detection.")] = 256,
    write_segments: Annotated[
        bool, typer.Option(help="Re-encode each segment to DIR/segments/ (default: virtual segments).")
    ] = False,
    config: Config = None,
    executor: Executor = "ray",
    address: Address = None,
    num_cpus: NumCpus = None,
    shard_size: ShardSize = 4,
    overwrite: Overwrite = False,
) -> None:
    """Detect shot boundaries and write one row per single-shot segment -> scenes.parquet.

    Then: `sfi-data filter --scenes DIR --out DIR` filters the segments like any other videos.
    """
    if not inputs and not list_file:
        raise typer.BadParameter("give at least one INPUT or --list")
    settings = apply_overrides(ScenesConfig(), (load_yaml(config).get("scenes") if config else None))
    settings = apply_overrides(
        settings,
        {
            "detector": detector,
            "threshold": threshold,
            "min_scene_len": min_scene_len,
            "max_segment_frames": max_segment_frames or None,
            "decode_width": decode_width,
            "write_segments": write_segments,
        },
    )
    run = run_config(executor, address, num_cpus, 0.0, shard_size, overwrite)
    try:
        with progress_bar("scenes") as progress:
            summary = run_scenes(list(inputs or []), out, settings, run, list_file or [], progress)
    except ImportError as error:
        fail(str(error))
    except (NothingToDoError, ValueError) as error:
        fail(str(error))
    console.print(summary_table(summary, "videos", "segments"))
    console.print(
        f"wrote {out / SCENES_MANIFEST}; next: sfi-data filter --scenes {out} --out {out}; "
        f"log: {out / 'sfi-data.log'}"
    )
