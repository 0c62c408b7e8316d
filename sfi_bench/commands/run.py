"""`sfi-bench run`: run one model on every test clip into a run directory (lossless frames + records)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from sfi_bench.app import app
from sfi_bench.generate import BenchRunConfig, ParallelConfig, RunSummary, run_model
from sfi_bench.models import UnknownModelError
from sfi_bench.storage import STORE_FORMATS
from sfi_core.cli_errors import fail
from sfi_core.config import cli_option, with_options

console = Console(stderr=True)

# Errors that mean "fix your set-up", shown as one red line instead of a traceback.
SETUP_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    ImportError,
    UnknownModelError,
    ValueError,
    KeyError,
    RuntimeError,
)


# Options shared by `run` and `score`, made from ParallelConfig's fields (help and defaults in one place,
# the same flags as sfi-data's: --executor, --address, --num-cpus, --gpus-per-worker).
ShardOption = Annotated[str | None, cli_option(ParallelConfig, "shard", "--shard")]
ExecutorOption = Annotated[str | None, cli_option(ParallelConfig, "executor", "--executor")]
WorkersOption = Annotated[int | None, cli_option(ParallelConfig, "num_cpus", "--num-cpus", "--workers")]
GpusOption = Annotated[float | None, cli_option(ParallelConfig, "num_gpus", "--gpus-per-worker")]
AddressOption = Annotated[str | None, cli_option(ParallelConfig, "address", "--address")]


def parallel_config(
    shard: str | None,
    executor: str | None,
    workers: int | None,
    gpus_per_worker: float | None,
    address: str | None,
) -> ParallelConfig:
    """ParallelConfig from the options given (checked: `--executor rya` fails in one line)."""
    try:
        return with_options(
            ParallelConfig(),
            shard=shard,
            executor=executor,
            num_cpus=workers,
            num_gpus=gpus_per_worker or None,
            address=address,
        )
    except ValueError as err:
        fail(str(err))


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """`key=value` pairs; values read as YAML scalars (3 -> int, 0.5 -> float, true -> bool)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--option takes KEY=VALUE, got {pair!r}")
        options[key.strip()] = yaml.safe_load(value) if value else ""
    return options


def summary_table(summary: RunSummary, title: str) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    per_clip = summary.seconds_per_clip
    overhead = summary.harness_overhead_share
    for name, value in [
        ("clips in test", summary.clips_total),
        ("already finished (skipped)", summary.already_done),
        ("generated now", summary.generated),
        ("skipped by the model", summary.skipped),
        ("missing (import)", summary.missing),
        ("errors (retried on rerun)", summary.errors),
        ("seconds", f"{summary.seconds_total:.1f}"),
        ("seconds / generated clip", f"{per_clip:.3f}" if per_clip is not None else "-"),
        ("harness overhead share", f"{overhead:.1%}" if overhead is not None else "-"),
    ]:
        table.add_row(name, str(value))
    return table


@app.command("run")
def run_command(
    model: Annotated[str, typer.Option("--model", "-m", help="A name from `sfi-bench models`.")],
    clips: Annotated[Path, typer.Option(help="Test manifest (CLIPS parquet, e.g. DIR/test.parquet).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (one per model).")],
    device: Annotated[str, typer.Option(help="auto (GPU when there is one), cpu or cuda.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Clips per model call (same N and size).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed given to the model for every clip.")] = 0,
    store: Annotated[str, typer.Option(help=f"Lossless frame store: {' or '.join(STORE_FORMATS)}.")] = "ffv1",
    resample: Annotated[
        str,
        typer.Option(
            help="Temporal resampling to N when a model makes another length: "
            "nearest (whole frames) or linear (blend)."
        ),
    ] = "nearest",
    weights: Annotated[str | None, typer.Option(help="Weights file/folder for the model.")] = None,
    weights_dir: Annotated[Path | None, typer.Option(help="Folder holding weight files.")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="Model option KEY=VALUE (repeatable), e.g. resample=true for film."),
    ] = None,
    frames: Annotated[
        list[int] | None, typer.Option("--frames", help="Only clips with this N (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first LIMIT clips (smoke tests).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Regenerate finished clips too.")] = False,
    shard: ShardOption = None,
    executor: ExecutorOption = None,
    workers: WorkersOption = None,
    gpus_per_worker: GpusOption = None,
    address: AddressOption = None,
) -> None:
    """Give the model each clip's first frame, last frame, caption and N; store the N frames it returns."""
    config = BenchRunConfig(
        model=model,
        clips=clips,
        out=out,
        device=device,
        batch_size=batch_size,
        seed=seed,
        store_format=store,
        resample_mode=resample,
        weights=weights,
        weights_dir=str(weights_dir) if weights_dir else None,
        model_options=parse_options(option),
        frame_counts=tuple(frames) if frames else None,
        limit=limit,
        overwrite=overwrite,
        parallel=parallel_config(shard, executor, workers, gpus_per_worker, address),
    )
    try:
        summary = run_model(config)
    except SETUP_ERRORS as err:
        fail(str(err))
    console.print(summary_table(summary, f"sfi-bench run --model {model} -> {out}"))
    if summary.errors:
        console.print(
            f"[yellow]{summary.errors} clip(s) failed; reasons in {out}/generations.parquet. "
            f"Rerun the same command to retry them.[/]"
        )
