"""Entry point of `sfi-bench`: imports every command module so each can register on the app."""

from __future__ import annotations

from sfi_bench.app import app
from sfi_core.cli_errors import run_cli

# One module per command group under sfi_bench/commands/.
COMMAND_MODULES: list[str] = [
    "sfi_bench.commands.train",
    "sfi_bench.commands.generate",
    "sfi_bench.commands.run",
    "sfi_bench.commands.models",
    "sfi_bench.commands.import_",
    "sfi_bench.commands.score",
    "sfi_bench.commands.leaderboard",
    "sfi_bench.commands.weights",
    "sfi_bench.commands.report",
    "sfi_bench.commands.convert",
]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; argv (default: sys.argv) lets tests run it in-process, error handling included."""
    run_cli(app, argv, COMMAND_MODULES)


if __name__ == "__main__":
    main()
