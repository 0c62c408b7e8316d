"""`sfi-data filter` and `sfi-data cut`: the curation core (paper section 3.3.1).

Settings resolve in one order: the dataclass defaults (sfi_data/config.py), what the filter recorded
(for `cut`: its scoring backends and reader), a --config file, then the flags given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_core.driver import NothingToDoError
from sfi_core.weights import WeightsMissingError
from sfi_data.app import app
from sfi_data.commands.options import (
    Address,
    Config,
    Device,
    Executor,
    Flow,
    GpusPerWorker,
    Inputs,
    ListFile,
    NumCpus,
    Out,
    Overwrite,
    Reader,
    ShardSize,
    Similarity,
    WeightsDir,
    exit_code_for,
    fail,
    given,
    off_when_zero,
    run_config,
)
from sfi_data.commands.progress import console, progress_bar, show_summary
from sfi_data.config import (
    CutConfig,
    FilterStageConfig,
    MetaFilterConfig,
    RangeConfig,
    ScoreConfig,
    apply_overrides,
    load_yaml,
)
from sfi_data.config_dataset import cli_option
from sfi_data.pipeline import run_cut, run_filter

# The errors a user can fix; each ends the command with one line (no traceback).
USER_ERRORS = (WeightsMissingError, NothingToDoError, FileNotFoundError, ValueError, ImportError)


def _range_option(score: str, name: str, flag: str):
    text = RangeConfig.__dataclass_fields__[name].metadata["help"]
    return typer.Option(flag, help=f"{score.capitalize()}: {text[0].lower()}{text[1:]}")


def _bounds(low, high, low_quantile, high_quantile) -> dict:
    """A keep-range given on the command line replaces the configured one whole."""
    flags = given(low=low, high=high, low_quantile=low_quantile, high_quantile=high_quantile)
    return {"low": None, "high": None, "low_quantile": None, "high_quantile": None} | flags if flags else {}


def _config_file(config: Path | None) -> dict:
    try:
        return load_yaml(config) if config else {}
    except ValueError as error:
        fail(str(error))


@app.command("filter")
def filter_command(
    inputs: Inputs = None,
    out: Out = Path("sfi_out"),
    list_file: ListFile = None,
    scenes: Annotated[
        Path | None,
        typer.Option(help="Filter the segments of `sfi-data scenes` (its folder or scenes.parquet)."),
    ] = None,
    similarity: Similarity = None,
    flow: Flow = None,
    clip_model: Annotated[str | None, cli_option(ScoreConfig, "clip_model")] = None,
    clip_pretrained: Annotated[str | None, cli_option(ScoreConfig, "clip_pretrained")] = None,
    max_fps: Annotated[float | None, cli_option(MetaFilterConfig, "max_fps")] = None,
    min_frames: Annotated[int | None, cli_option(MetaFilterConfig, "min_frames")] = None,
    max_frames: Annotated[int | None, cli_option(MetaFilterConfig, "max_frames")] = None,
    sim_low: Annotated[float | None, _range_option("similarity", "low", "--sim-low")] = None,
    sim_high: Annotated[float | None, _range_option("similarity", "high", "--sim-high")] = None,
    sim_low_quantile: Annotated[
        float | None, _range_option("similarity", "low_quantile", "--sim-low-quantile")
    ] = None,
    sim_high_quantile: Annotated[
        float | None, _range_option("similarity", "high_quantile", "--sim-high-quantile")
    ] = None,
    flow_low: Annotated[float | None, _range_option("flow score", "low", "--flow-low")] = None,
    flow_high: Annotated[float | None, _range_option("flow score", "high", "--flow-high")] = None,
    flow_low_quantile: Annotated[
        float | None, _range_option("flow score", "low_quantile", "--flow-low-quantile")
    ] = None,
    flow_high_quantile: Annotated[
        float | None, _range_option("flow score", "high_quantile", "--flow-high-quantile")
    ] = None,
    device: Device = None,
    reader: Reader = None,
    weights_dir: WeightsDir = None,
    config: Config = None,
    executor: Executor = None,
    address: Address = None,
    num_cpus: NumCpus = None,
    gpus_per_worker: GpusPerWorker = None,
    shard_size: ShardSize = None,
    overwrite: Overwrite = None,
) -> None:
    """Probe every input, keep fps/length in range, score first vs last frame, apply thresholds -> videos.parquet.

    Default thresholds are the 5-95 % quantiles of the scored corpus; give explicit bounds for a small one.
    """
    if not inputs and not list_file and scenes is None:
        raise typer.BadParameter("give at least one INPUT, --list or --scenes")
    if scenes is not None and (inputs or list_file):
        raise typer.BadParameter("--scenes takes the inputs from scenes.parquet; drop INPUT/--list")
    file = _config_file(config)
    flags = {
        "meta": given(max_fps=max_fps, min_frames=min_frames, max_frames=max_frames),
        "score": given(
            similarity=similarity,
            flow=flow,
            clip_model=clip_model,
            clip_pretrained=clip_pretrained,
            device=device,
            reader=reader,
        ),
        "thresholds": {
            "similarity": _bounds(sim_low, sim_high, sim_low_quantile, sim_high_quantile),
            "flow": _bounds(flow_low, flow_high, flow_low_quantile, flow_high_quantile),
        },
    }
    try:
        settings = apply_overrides(apply_overrides(FilterStageConfig(), file.get("filter"), "filter."), flags)
        run = run_config(executor, address, num_cpus, gpus_per_worker, shard_size, overwrite, file.get("run"))
    except ValueError as error:
        fail(str(error))
    segments = None
    if scenes is not None:
        from sfi_data.scenes import scenes_manifest, segments_as_videos

        try:
            segments, failed = segments_as_videos(scenes_manifest(scenes), out)
        except FileNotFoundError as error:
            fail(str(error), exit_code_for(error))
        console.print(f"{len(segments)} segments from {scenes}; {failed} unreadable sources left out")
    try:
        with progress_bar("filter") as progress:
            summary = run_filter(
                list(inputs or []),
                out,
                settings,
                run,
                str(weights_dir) if weights_dir else None,
                list_file or [],
                progress,
                videos=segments,
            )
    except USER_ERRORS as error:
        fail(str(error), exit_code_for(error))
    show_summary(summary, "videos")
    console.print(f"wrote {out / 'videos.parquet'}; log: {out / 'sfi-data.log'}")


@app.command("cut")
def cut_command(
    out: Out = Path("sfi_out"),
    frame_counts: Annotated[str | None, cli_option(CutConfig, "frame_counts")] = None,
    crf: Annotated[int | None, cli_option(CutConfig, "crf")] = None,
    preset: Annotated[str | None, cli_option(CutConfig, "preset")] = None,
    score_clips: Annotated[
        bool | None, cli_option(CutConfig, "score_clips", "--score-clips/--no-score-clips")
    ] = None,
    similarity: Annotated[
        str | None, typer.Option(help="Clip similarity backend (default: the one the filter recorded).")
    ] = None,
    flow: Annotated[
        str | None, typer.Option(help="Clip flow backend (default: the one the filter recorded).")
    ] = None,
    hard_cut_threshold: Annotated[float | None, cli_option(CutConfig, "hard_cut_threshold")] = None,
    hard_cut_ratio: Annotated[float | None, cli_option(CutConfig, "hard_cut_ratio")] = None,
    device: Device = None,
    reader: Annotated[str | None, cli_option(CutConfig, "reader")] = None,
    weights_dir: WeightsDir = None,
    config: Config = None,
    executor: Executor = None,
    address: Address = None,
    num_cpus: NumCpus = None,
    gpus_per_worker: GpusPerWorker = None,
    shard_size: ShardSize = None,
    overwrite: Overwrite = None,
) -> None:
    """Cut centred clips of every scale from each kept video -> clips/, frames/ (PNG) and clips.parquet.

    Clips are scored with the backends the filter recorded in DIR, so a weight-free filter needs no
    flags here.
    """
    from sfi_data.pipeline import filter_score_config

    counts = None
    if frame_counts is not None:
        try:
            counts = [int(x) for x in frame_counts.split(",") if x.strip()]
        except ValueError:
            fail(f"--frame-counts must be comma-separated integers, not {frame_counts!r}")
    file = _config_file(config)
    try:
        cut_settings = apply_overrides(CutConfig(), file.get("cut"), "cut.")
        cut_settings = apply_overrides(
            cut_settings,
            given(frame_counts=sorted(set(counts)) if counts else None, crf=crf, preset=preset)
            | given(score_clips=score_clips, reader=reader)
            | off_when_zero(hard_cut_threshold=hard_cut_threshold, hard_cut_ratio=hard_cut_ratio),
        )
        score = apply_overrides(
            filter_score_config(out), (file.get("filter") or {}).get("score"), "filter.score."
        )
        score = apply_overrides(score, given(similarity=similarity, flow=flow, device=device))
        run = run_config(executor, address, num_cpus, gpus_per_worker, shard_size, overwrite, file.get("run"))
    except ValueError as error:
        fail(str(error))
    try:
        with progress_bar("cut") as progress:
            summary = run_cut(
                out, cut_settings, run, score, str(weights_dir) if weights_dir else None, progress
            )
    except USER_ERRORS as error:
        fail(str(error), exit_code_for(error))
    show_summary(summary, "videos", "clips")
    console.print(f"wrote {out / 'clips.parquet'}; log: {out / 'sfi-data.log'}")
