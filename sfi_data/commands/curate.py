"""`sfi-data filter` and `sfi-data cut`: the curation core (paper section 3.3.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    fail,
    given,
    off_when_zero,
    run_config,
)
from sfi_data.commands.progress import console, progress_bar, summary_table
from sfi_data.config import (
    CutConfig,
    FilterStageConfig,
    RangeConfig,
    ScoreConfig,
    ThresholdConfig,
    apply_overrides,
    load_yaml,
)
from sfi_data.pipeline import NothingToDoError, run_cut, run_filter


def _range(
    low: float | None, high: float | None, qlow: float | None, qhigh: float | None, default: RangeConfig
) -> RangeConfig:
    if low is None and high is None and qlow is None and qhigh is None:
        return default
    return RangeConfig(low=low, high=high, low_quantile=qlow, high_quantile=qhigh)


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
    clip_model: Annotated[str | None, typer.Option(help="open_clip model name [default: ViT-B-32].")] = None,
    clip_pretrained: Annotated[
        str | None, typer.Option(help="open_clip tag or a checkpoint file [default: openai].")
    ] = None,
    max_fps: Annotated[float | None, typer.Option(help="Keep videos with fps <= this [default: 30].")] = None,
    min_frames: Annotated[
        int | None, typer.Option(help="Keep videos with at least this many frames [default: 81].")
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option(help="Keep videos with at most this many frames [default: 324].")
    ] = None,
    sim_low: Annotated[float | None, typer.Option(help="Explicit low similarity threshold.")] = None,
    sim_high: Annotated[float | None, typer.Option(help="Explicit high similarity threshold.")] = None,
    sim_low_quantile: Annotated[
        float | None, typer.Option(help="Low similarity threshold as a corpus quantile.")
    ] = None,
    sim_high_quantile: Annotated[
        float | None, typer.Option(help="High similarity threshold as a quantile.")
    ] = None,
    flow_low: Annotated[
        float | None, typer.Option(help="Explicit low flow-score threshold (px at the work size).")
    ] = None,
    flow_high: Annotated[float | None, typer.Option(help="Explicit high flow-score threshold.")] = None,
    flow_low_quantile: Annotated[
        float | None, typer.Option(help="Low flow threshold as a corpus quantile.")
    ] = None,
    flow_high_quantile: Annotated[
        float | None, typer.Option(help="High flow threshold as a quantile.")
    ] = None,
    device: Device = None,
    reader: Reader = None,
    weights_dir: WeightsDir = None,
    config: Config = None,
    executor: Executor = "ray",
    address: Address = None,
    num_cpus: NumCpus = None,
    gpus_per_worker: GpusPerWorker = 0.0,
    shard_size: ShardSize = 8,
    overwrite: Overwrite = False,
) -> None:
    """Probe every input, keep fps/length in range, score first vs last frame, apply thresholds -> videos.parquet."""
    settings = FilterStageConfig()
    settings = apply_overrides(settings, (load_yaml(config).get("filter") if config else None))
    thresholds = ThresholdConfig(
        similarity=_range(
            sim_low, sim_high, sim_low_quantile, sim_high_quantile, settings.thresholds.similarity
        ),
        flow=_range(flow_low, flow_high, flow_low_quantile, flow_high_quantile, settings.thresholds.flow),
    )
    settings = apply_overrides(
        settings,
        {
            "meta": given(max_fps=max_fps, min_frames=min_frames, max_frames=max_frames),
            "score": given(
                similarity=similarity,
                flow=flow,
                clip_model=clip_model,
                clip_pretrained=clip_pretrained,
                device=device,
                reader=reader,
            ),
        },
    )
    settings.thresholds = thresholds
    if not inputs and not list_file and scenes is None:
        raise typer.BadParameter("give at least one INPUT, --list or --scenes")
    if scenes is not None and (inputs or list_file):
        raise typer.BadParameter("--scenes takes the inputs from scenes.parquet; drop INPUT/--list")
    segments = None
    if scenes is not None:
        from sfi_data.scenes import scenes_manifest, segments_as_videos

        try:
            segments, failed = segments_as_videos(scenes_manifest(scenes), out)
        except FileNotFoundError as error:
            fail(str(error))
        console.print(f"{len(segments)} segments from {scenes}; {failed} unreadable sources left out")
    run = run_config(executor, address, num_cpus, gpus_per_worker, shard_size, overwrite)
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
    except WeightsMissingError as error:
        fail(str(error))
    except (NothingToDoError, ValueError) as error:
        fail(str(error))
    console.print(summary_table(summary, "videos"))
    console.print(f"wrote {out / 'videos.parquet'}; log: {out / 'sfi-data.log'}")


@app.command("cut")
def cut_command(
    out: Out = Path("sfi_out"),
    frame_counts: Annotated[
        str | None, typer.Option(help="Comma-separated clip lengths [default: S = 5,9,17,33,65,81].")
    ] = None,
    crf: Annotated[int | None, typer.Option(help="x264 quality, lower is better [default: 18].")] = None,
    preset: Annotated[str | None, typer.Option(help="x264 preset [default: medium].")] = None,
    score_clips: Annotated[
        bool | None, typer.Option(help="Score each clip's first/last frames too [default: yes].")
    ] = None,
    similarity: Similarity = None,
    flow: Flow = None,
    hard_cut_threshold: Annotated[
        float | None,
        typer.Option(
            help="Drop clips whose consecutive-frame difference exceeds this, 0 disables [default: 60]."
        ),
    ] = None,
    hard_cut_ratio: Annotated[
        float | None,
        typer.Option(
            help="Also drop clips with an isolated jump this many times its neighbours, 0 disables [default: 2]."
        ),
    ] = None,
    device: Device = None,
    reader: Reader = None,
    weights_dir: WeightsDir = None,
    config: Config = None,
    executor: Executor = "ray",
    address: Address = None,
    num_cpus: NumCpus = None,
    gpus_per_worker: GpusPerWorker = 0.0,
    shard_size: ShardSize = 4,
    overwrite: Overwrite = False,
) -> None:
    """Cut centred clips of every scale from each kept video -> clips/, frames/ (PNG) and clips.parquet."""
    counts = None
    if frame_counts is not None:
        try:
            counts = tuple(sorted({int(x) for x in frame_counts.split(",") if x.strip()}))
        except ValueError as error:
            raise typer.BadParameter(f"--frame-counts must be integers: {frame_counts}") from error
    yaml_settings = load_yaml(config) if config else {}
    cut_settings = apply_overrides(CutConfig(), yaml_settings.get("cut"))
    cut_settings = apply_overrides(
        cut_settings,
        given(
            frame_counts=counts,
            crf=crf,
            preset=preset,
            score_clips=score_clips,
            reader=reader,
        )
        | off_when_zero(hard_cut_threshold=hard_cut_threshold, hard_cut_ratio=hard_cut_ratio),
    )
    score = apply_overrides(ScoreConfig(), (yaml_settings.get("filter") or {}).get("score"))
    score = apply_overrides(score, given(similarity=similarity, flow=flow, device=device, reader=reader))
    run = run_config(executor, address, num_cpus, gpus_per_worker, shard_size, overwrite)
    try:
        with progress_bar("cut") as progress:
            summary = run_cut(
                out, cut_settings, run, score, str(weights_dir) if weights_dir else None, progress
            )
    except WeightsMissingError as error:
        fail(str(error))
    except (NothingToDoError, FileNotFoundError, ValueError) as error:
        fail(str(error))
    console.print(summary_table(summary, "videos", "clips"))
    console.print(f"wrote {out / 'clips.parquet'}; log: {out / 'sfi-data.log'}")
