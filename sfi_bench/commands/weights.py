"""`sfi-bench weights`: every network in the weights table, present or missing, where it is, how to get it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sfi_bench.app import app


def weights_rows(weights_dir: Path | None = None) -> list[dict]:
    """One row per WEIGHTS entry: name, present, path (found, or first place looked), how to get it, and users."""
    from sfi_bench.metrics.suite import metric_info
    from sfi_core.weights import WEIGHTS, WeightsMissingError, candidates, resolve, resolve_folder

    users: dict[str, list[str]] = {}
    for info in metric_info():
        for name in info["weights"]:
            users.setdefault(name, []).append(info["name"])
    rows = []
    for spec in WEIGHTS.values():
        try:
            found = resolve_folder(spec.name, weights_dir) if spec.folder else resolve(spec.name, weights_dir)
            path, present = str(found), True
        except WeightsMissingError:
            places = candidates(spec, weights_dir)
            path, present = (str(places[0]) if places else "-"), False
        rows.append(
            {
                "name": spec.name,
                "present": present,
                "path": path,
                "file": spec.filename,
                "source": spec.source,
                "license": spec.license,
                "how_to_get": spec.how_to_get(),
                "used_by": ", ".join(users.get(spec.name, [])) or spec.purpose,
            }
        )
    return rows


@app.command("weights")
def weights(
    weights_dir: Annotated[
        Path | None, typer.Option("--weights-dir", help="Folder searched first for every file.")
    ] = None,
) -> None:
    """List every pretrained network: present or missing, its path, licence, and the exact way to get it."""
    rows = weights_rows(
        weights_dir or (Path(os.environ["SFI_WEIGHTS_DIR"]) if os.environ.get("SFI_WEIGHTS_DIR") else None)
    )
    table = Table(title="sfi weights (nothing is downloaded implicitly)", show_lines=True)
    for column in ("name", "status", "path", "licence", "used by", "how to get it"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status = "[green]present[/green]" if row["present"] else "[red]missing[/red]"
        table.add_row(
            row["name"],
            status,
            row["path"],
            row["license"],
            row["used_by"],
            "" if row["present"] else row["how_to_get"],
        )
    Console(width=200).print(table)
    missing = sum(not row["present"] for row in rows)
    typer.echo(
        f"{len(rows) - missing} present, {missing} missing. Metrics whose weights are missing are "
        f"reported as 'not computed' with this reason."
    )
