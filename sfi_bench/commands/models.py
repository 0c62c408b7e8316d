"""`sfi-bench models`: every registered model, what it is and what it needs (nothing is imported heavily)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sfi_bench.app import app
from sfi_bench.commands.run import console
from sfi_bench.models import MODEL_REGISTRY, model_class


def model_rows() -> list[dict[str, str]]:
    """One row per model; a model whose module cannot be imported says why instead of its needs."""
    rows = []
    for name in sorted(MODEL_REGISTRY):
        try:
            cls = model_class(name)
        except ImportError as err:
            rows.append(
                {"name": name, "description": "(not importable here)", "needs": str(err), "version": ""}
            )
            continue
        rows.append(
            {
                "name": name,
                "description": cls.description,
                "needs": "; ".join(cls.requirements) or "-",
                "version": str(cls.version),
            }
        )
    return rows


@app.command("models")
def models_command(
    plain: Annotated[bool, typer.Option(help="Tab-separated lines instead of a table.")] = False,
) -> None:
    """List the models `sfi-bench run --model NAME` accepts."""
    rows = model_rows()
    if plain:
        for row in rows:
            typer.echo("\t".join([row["name"], row["version"], row["description"], row["needs"]]))
        return
    table = Table(title="sfi-bench models")
    for column in ("name", "version", "description", "needs"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["version"], row["description"], row["needs"])
    console.print(table)
