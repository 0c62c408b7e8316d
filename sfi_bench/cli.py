"""Entry point of `sfi-bench`: imports every command module so each can register on the app."""

from __future__ import annotations

import importlib

from sfi_bench.app import app

# One module per command group under sfi_bench/commands/.
COMMAND_MODULES: list[str] = [
    "sfi_bench.commands.train",
    "sfi_bench.commands.run",
    "sfi_bench.commands.models",
    "sfi_bench.commands.import_",
    "sfi_bench.commands.score",
    "sfi_bench.commands.leaderboard",
    "sfi_bench.commands.weights",
    "sfi_bench.commands.report",
]


def main() -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    app()


if __name__ == "__main__":
    main()
