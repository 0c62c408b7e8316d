"""Options and helpers shared by the sfi-data commands (one definition of each flag)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sfi_data.commands.progress import console
from sfi_data.config import RunConfig

Inputs = Annotated[
    list[str] | None,
    typer.Argument(help="Folders (recursive), globs, files, or .txt/.parquet lists.", show_default=False),
]
ListFile = Annotated[list[str] | None, typer.Option("--list", help="Text or Parquet list of inputs.")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Dataset folder (manifests, clips, log).")]
Executor = Annotated[str, typer.Option(help="ray (default; in-process unless --address) or local (serial).")]
Address = Annotated[
    str | None, typer.Option(help="Ray cluster address (or set RAY_ADDRESS).", envvar="RAY_ADDRESS")
]
NumCpus = Annotated[int | None, typer.Option(help="CPUs for the in-process Ray (default: all).")]
GpusPerWorker = Annotated[float, typer.Option(help="GPUs each Ray worker asks for (e.g. 0.5).")]
Overwrite = Annotated[bool, typer.Option(help="Redo finished work instead of resuming.")]
ShardSize = Annotated[int, typer.Option(help="Videos per shard (unit of work and of resume).")]
Similarity = Annotated[
    str | None, typer.Option(help="clip (paper; needs weights) or hsv-hist (weight-free) [default: clip].")
]
Flow = Annotated[
    str | None,
    typer.Option(help="raft (paper; needs weights), dis or farneback (OpenCV, weight-free) [default: raft]."),
]
Device = Annotated[str | None, typer.Option(help="auto, cpu or cuda [default: auto].")]
WeightsDir = Annotated[
    Path | None, typer.Option(help="Folder holding weight files (else HF_HOME/TORCH_HOME).")
]
Config = Annotated[Path | None, typer.Option("--config", help="YAML with settings (see pipelines/).")]


def run_config(
    executor: str, address: str | None, num_cpus: int | None, gpus: float, shard_size: int, overwrite: bool
) -> RunConfig:
    if executor not in ("ray", "local"):
        raise typer.BadParameter(f"--executor must be 'ray' or 'local', not {executor!r}")
    return RunConfig(
        executor=executor,
        address=address,
        num_cpus=num_cpus,
        num_gpus=gpus or None,
        shard_size=shard_size,
        overwrite=overwrite,
    )


def fail(message: str, code: int = 1) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


Reader = Annotated[
    str | None, typer.Option(help="Frame reader: pyav (fastest here), decord, or auto [default: pyav].")
]


# Options left out on the command line are None: they neither override a --config file nor the defaults
# in sfi_data/config.py (the one place for them).
def given(**options):
    """The options the user actually gave."""
    return {name: value for name, value in options.items() if value is not None}


def off_when_zero(**options):
    """Given options where 0 means "disabled" (stored as None)."""
    return {name: (value or None) for name, value in options.items() if value is not None}
