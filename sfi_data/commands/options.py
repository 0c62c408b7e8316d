"""Options and helpers shared by the sfi-data commands (one definition of each flag).

Help text and shown defaults come from the config dataclasses' fields (sfi_data/config.py) through
`cli_option`; every option defaults to None, meaning "not given": it then overrides neither a
--config file nor the dataclass default, nor a setting an earlier stage recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sfi_core.cli_errors import exit_code_for, fail  # noqa: F401 - the commands' one fail()
from sfi_data.config import RunConfig, ScoreConfig, apply_overrides
from sfi_data.config_dataset import cli_option

Inputs = Annotated[
    list[str] | None,
    typer.Argument(help="Folders (recursive), globs, files, or .txt/.parquet lists.", show_default=False),
]
ListFile = Annotated[list[str] | None, typer.Option("--list", help="Text or Parquet list of inputs.")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Dataset folder (manifests, clips, log).")]
Executor = Annotated[str | None, cli_option(RunConfig, "executor")]
Address = Annotated[
    str | None,
    typer.Option(help=RunConfig.__dataclass_fields__["address"].metadata["help"], envvar="RAY_ADDRESS"),
]
NumCpus = Annotated[int | None, cli_option(RunConfig, "num_cpus")]
GpusPerWorker = Annotated[float | None, cli_option(RunConfig, "num_gpus", "--gpus-per-worker")]
Overwrite = Annotated[bool | None, cli_option(RunConfig, "overwrite", "--overwrite")]
ShardSize = Annotated[int | None, cli_option(RunConfig, "shard_size")]
Similarity = Annotated[str | None, cli_option(ScoreConfig, "similarity")]
Flow = Annotated[str | None, cli_option(ScoreConfig, "flow")]
Device = Annotated[str | None, cli_option(ScoreConfig, "device")]
Reader = Annotated[str | None, cli_option(ScoreConfig, "reader")]
WeightsDir = Annotated[
    Path | None, typer.Option(help="Folder holding weight files (else HF_HOME/TORCH_HOME).")
]
Config = Annotated[Path | None, typer.Option("--config", help="YAML with settings (see pipelines/).")]


def given(**options: Any) -> dict[str, Any]:
    """The options the user actually gave."""
    return {name: value for name, value in options.items() if value is not None}


def off_when_zero(**options: Any) -> dict[str, Any]:
    """Given options where 0 means "disabled" (stored as None)."""
    return {name: (value or None) for name, value in options.items() if value is not None}


def run_config(
    executor: str | None,
    address: str | None,
    num_cpus: int | None,
    gpus: float | None,
    shard_size: int | None,
    overwrite: bool | None,
    section: dict | None = None,
) -> RunConfig:
    """RunConfig from a --config file's `run:` section and the flags given (checked: `--executor rya` fails)."""
    run = apply_overrides(RunConfig(), section, "run.")
    return apply_overrides(
        run,
        given(
            executor=executor,
            address=address,
            num_cpus=num_cpus,
            num_gpus=gpus or None,
            shard_size=shard_size,
            overwrite=overwrite,
        ),
    )
