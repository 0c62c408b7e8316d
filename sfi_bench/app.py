"""The `sfi-bench` Typer application object; commands register on it from sfi_bench/commands/."""

import typer

app = typer.Typer(
    name="sfi-bench",
    help="SFIBench: run SFI models on test clips, score them, export the leaderboard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
