"""Entry point of `sfi-data`: imports every command module so each can register on the app."""

from __future__ import annotations

from sfi_core.cli_errors import run_cli
from sfi_data.app import app

# One module per command group under sfi_data/commands/.
COMMAND_MODULES = [
    "sfi_data.commands.curate",
    "sfi_data.commands.split",
    "sfi_data.commands.caption",
    "sfi_data.commands.categorize",
    "sfi_data.commands.export",
    "sfi_data.commands.stats",
    "sfi_data.commands.run",
    "sfi_data.commands.scenes",
]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; argv (default: sys.argv) lets tests run it in-process, error handling included."""
    run_cli(app, argv, COMMAND_MODULES)


if __name__ == "__main__":
    main()
