"""One line instead of a traceback for a user's mistakes that reach the top of `sfi-data` or `sfi-bench`.

Commands report the errors they expect themselves. What escapes them is either such a mistake (an
output folder that cannot be written, a broken YAML file, a Parquet file that is not the manifest
the command reads) or a bug; `run_cli` turns the first kind into `error: WHAT. WHAT TO DO` and an
exit code, and lets a bug keep its traceback.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import NoReturn

# The one exit-code convention of sfi-data and sfi-bench (README, "Exit codes"):
EXIT_FAILED = 1  # the command ran, but the work it is for failed (nothing processed, nothing captioned)
EXIT_USAGE = 2  # the user must change the command line, a file or the output folder before rerunning


def exit_code_for(error: BaseException) -> int:
    """EXIT_FAILED for an error that says the work failed (it carries `exit_code`), else EXIT_USAGE."""
    return int(getattr(error, "exit_code", EXIT_USAGE))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """`error: MESSAGE` on stderr, on one line (a terminal may still wrap it; grep finds it), and exit."""
    import typer
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


class EnvironmentSettingError(ValueError):
    """An environment variable of ours holds a value we cannot use (SFI_EXECUTOR=rya): one line."""


@dataclass(frozen=True)
class UserMistake:
    message: str
    exit_code: int = EXIT_USAGE


def _where(error: OSError) -> str:
    return str(error.filename) if error.filename else "a file"


def _os_mistake(error: OSError) -> UserMistake | None:
    where, why = _where(error), error.strerror or type(error).__name__
    if isinstance(error, PermissionError) or error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return UserMistake(
            f"cannot write {where} ({why}). Give an output path you can write to, or fix its permissions"
        )
    if error.errno == errno.ENOSPC:
        return UserMistake(f"no space left writing {where}. Free some space or give --out another disk")
    if isinstance(error, NotADirectoryError | FileExistsError):
        return UserMistake(f"{where} is a file where a folder is needed ({why}). Give --out a folder path")
    if isinstance(error, FileNotFoundError):
        return UserMistake(f"{where} does not exist. Check the path, or run the step that writes it first")
    return None


def _yaml_mistake(error: Exception) -> UserMistake | None:
    import yaml

    if not isinstance(error, yaml.YAMLError):
        return None
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(error, "problem", None) or type(error).__name__
    return UserMistake(f"a settings file is not valid YAML ({problem}{where}). Fix the file and rerun")


def _manifest_columns() -> set[str]:
    # Only a missing manifest column is a wrong manifest; any other KeyError is a bug.
    from sfi_core.schemas import MANIFESTS

    return {name for schema in MANIFESTS.values() for name in schema.names}


def _manifest_mistake(error: Exception) -> UserMistake | None:
    import pyarrow as pa

    if isinstance(error, pa.ArrowException):
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return UserMistake(
            f"a manifest could not be read ({first}). Give the Parquet file the command asks for "
            "(e.g. DIR/test.parquet from `sfi-data split`)"
        )
    if isinstance(error, KeyError) and error.args and error.args[0] in _manifest_columns():
        return UserMistake(
            f"a manifest has no column {error.args[0]!r}: it is not the one this command reads. "
            "Give the manifest the command asks for (e.g. DIR/test.parquet from `sfi-data split`)"
        )
    return None


def explain(error: BaseException) -> UserMistake | None:
    """The one-line explanation of a user's mistake, or None for anything else (a bug)."""
    if isinstance(error, OSError):
        return _os_mistake(error)
    if not isinstance(error, Exception):
        return None
    if isinstance(error, EnvironmentSettingError):
        return UserMistake(str(error))
    return _yaml_mistake(error) or _manifest_mistake(error)


def run_cli(app, argv: list[str] | None = None, command_modules: list[str] | tuple[str, ...] = ()) -> None:
    """Run a Typer app; a user's mistake that escapes its command ends in one line, not a traceback.

    command_modules: modules that register their commands on `app` when imported (one per command group).
    """
    import importlib

    try:
        for module in command_modules:  # inside: a bad SFI_EXECUTOR (read on import) is one line too
            importlib.import_module(module)
        app(args=argv)
    except Exception as error:  # noqa: BLE001 - `explain` sorts mistakes from bugs; bugs are re-raised
        mistake = explain(error)
        if mistake is None:
            raise
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(mistake.message)}")
        raise SystemExit(mistake.exit_code) from None
