"""The `sfi-data` Typer application object; commands register on it from sfi_data/commands/."""

import typer

app = typer.Typer(
    name="sfi-data",
    help="Curate an SFI-300K-style clip set: filter, cut, caption, split, stats.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
