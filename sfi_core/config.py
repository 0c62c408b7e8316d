"""The one config toolkit of every command: settings with their help and choices, choice checks,
CLI options and YAML sections made from the dataclasses, and the execution settings all stages share.

A setting is a dataclass field made by `setting()`: its help text (`metadata["help"]`, shown by --help
and the docs) and, where it takes a fixed set of values, its choices. `cli_option` builds a typer
option from a field (default None: "not given", so a flag left out overrides neither a --config file
nor the dataclass default); `with_options` applies the options given; `apply_overrides` checks a YAML
section whole (unknown keys, wrong types, unknown choices) before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sfi_core.executors import DEFAULT_EXECUTOR, EXECUTORS


def setting(
    default: Any = dataclasses.MISSING, help: str = "", choices: tuple = (), factory: Any = None
) -> Any:
    """A dataclass field with its help text and, optionally, the values it may take."""
    metadata = {"help": help, "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class ExecutionConfig:
    """Where and how a stage runs, for every command (one definition of --executor and its company)."""

    executor: str = setting(
        DEFAULT_EXECUTOR, "ray (in-process unless --address) or local (one process, serial).", EXECUTORS
    )
    address: str | None = setting(None, "Ray cluster address (or set RAY_ADDRESS).")
    num_cpus: int | None = setting(None, "CPUs for the in-process Ray (default: all).")
    num_gpus: float | None = setting(None, "GPUs each Ray worker asks for (e.g. 0.5).")
    shard_size: int | None = setting(
        None, "Inputs per shard, the unit of work and of resume (default: the stage's own)."
    )
    overwrite: bool = setting(False, "Redo finished work instead of resuming.")

    def for_step(self, shard_size: int | None, overwrite: bool) -> ExecutionConfig:
        """Where and how to run, with one step's own unit of work and its own --overwrite (a caption
        batch, one export shard): the executor, address and resources stay the command's."""
        return dataclasses.replace(self, shard_size=shard_size, overwrite=overwrite)


def check_choice(where: str, value: Any, choices: tuple) -> None:
    """One line naming the choices instead of a silent fallback (`--reader decrod`)."""
    if choices and value is not None and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where} {value!r} is not one of {', '.join(map(str, choices))}{hint}")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` as type `hint` (int -> float, list -> tuple), or ValueError naming the setting."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ValueError:
                continue
    elif origin in (tuple, list) and isinstance(value, (list, tuple)):
        items = [_coerce(item, args[0], f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif hint in (int, str, bool) and type(value) is hint:
        return value
    elif hint is Any:
        return value
    raise ValueError(f"setting {where} must be {_type_name(hint)}, not {value!r}")


def _merge(obj: Any, updates: dict[str, Any], where: str) -> Any:
    """A copy of dataclass `obj` with `updates` applied and checked, recursing into nested dataclasses."""
    if not isinstance(updates, dict):
        raise ValueError(f"setting {where.rstrip('.') or 'section'} must be a mapping, not {updates!r}")
    specs = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in updates.items():
        if key not in specs:
            close = difflib.get_close_matches(str(key), list(specs), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if key in {f.name for f in dataclasses.fields(ExecutionConfig)} and not close:
                hint = f" (every step runs on the pipeline's `run:` section: set run.{key} there)"
            raise ValueError(f"unknown setting '{where}{key}'{hint}; known: {', '.join(specs)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            value = _merge(current, value, f"{where}{key}.")
        else:
            value = _coerce(value, hints[key], f"{where}{key}")
            check_choice(f"{where}{key}", value, specs[key].metadata.get("choices", ()))
        changes[key] = value
    return dataclasses.replace(obj, **changes)


def apply_overrides(obj: Any, updates: dict[str, Any] | None, where: str = "") -> Any:
    """`obj` with `updates` applied and checked; `where` ("cut.") names the section in errors."""
    return _merge(obj, updates or {}, where)


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping, or ValueError in one line (missing file, syntax error with its line, not a mapping)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"{path}:{where} is not valid YAML ({problem})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def validate(obj: Any, where: str = "") -> Any:
    """Check every choice-valued field of a config built in code (YAML and flags are checked on merge)."""
    for spec in dataclasses.fields(obj):
        value = getattr(obj, spec.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{where}{spec.name}.")
        else:
            check_choice(f"{where}{spec.name}", value, spec.metadata.get("choices", ()))
    return obj


def cli_option(config: type, name: str, *flags: str) -> Any:
    """A typer option whose help (and shown default) come from `config`'s field `name`.

    The option's own default is None: an option left out neither overrides a --config file nor the
    dataclass default (see `given`).
    """
    spec = {f.name: f for f in dataclasses.fields(config)}[name]
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    if isinstance(default, (list, tuple)):
        default = ",".join(map(str, default)) if default else None
    shown = "" if default is None or "(default:" in spec.metadata["help"] else f" (default: {default})"
    import typer

    return typer.Option(*flags, help=spec.metadata["help"] + shown, show_default=False)


def with_options(config: Any, **options: Any) -> Any:
    """`config` with the options the user gave (not None) applied."""
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = set(options) - fields
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)} for {type(config).__name__}")
    return dataclasses.replace(config, **{k: v for k, v in options.items() if v is not None})
