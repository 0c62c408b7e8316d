"""`sfi-bench weights`: every network of the weights table (missing packages first), fetched on request."""

from __future__ import annotations

import difflib
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sfi_bench.app import app

STATUS_STYLE = {"verified": "green", "present": "yellow", "corrupt": "red", "missing": "red"}


def users_of() -> dict[str, list[str]]:
    """Entry name -> the metrics (declared on their classes) and models/commands (in the table) that load it."""
    from sfi_bench.metrics.suite import metric_info
    from sfi_core.weights import WEIGHTS

    users: dict[str, list[str]] = {name: list(spec.users) for name, spec in WEIGHTS.items()}
    for info in metric_info():
        for name in info["weights"]:
            users.setdefault(name, []).append(info["name"])
    return users


def weights_rows(weights_dir: Path | None = None) -> list[dict]:
    """One row per WEIGHTS entry: its status (verified, present, corrupt, missing), path and users."""
    from sfi_core.weights import (
        WEIGHTS,
        WeightsCorruptError,
        WeightsMissingError,
        candidates,
        check_file,
        check_folder,
        how_to_get,
        manual_command,
        resolve,
    )

    users = users_of()
    rows = []
    for spec in WEIGHTS.values():
        detail = ""
        try:
            found = resolve(spec.name, weights_dir)
            verified = (
                check_folder(spec, found.parent, weights_dir)
                if spec.folder
                else check_file(spec, found, weights_dir)
            )
            status, path = (
                ("verified" if verified else "present"),
                str(found.parent if spec.folder else found),
            )
        except WeightsCorruptError as err:
            status, path, detail = "corrupt", str(err.path), str(err)
        except WeightsMissingError:
            places = candidates(spec, weights_dir)
            status, path = "missing", str(places[0]) if places else "-"
        rows.append(
            {
                "name": spec.name,
                "status": status,
                "present": status in ("verified", "present"),
                "path": path,
                "detail": detail,
                "file": spec.filename,
                "source": spec.source,
                "license": spec.license,
                "how_to_get": how_to_get(spec, weights_dir),
                "command": manual_command(spec, weights_dir),
                "named_only": spec.named_only,
                "used_by": ", ".join(users.get(spec.name, [])) or spec.purpose,
            }
        )
    # The same model in another layout (the Wan folders): one present layout serves, the other is not needed.
    present = {row["name"] for row in rows if row["present"]}
    for row in rows:
        served_by = [alt for alt in WEIGHTS[row["name"]].alternates if alt in present]
        row["served_by"] = served_by[0] if served_by and not row["present"] else None
        if row["served_by"]:
            row["used_by"] += f" (not needed: {row['served_by']} is present)"
    return rows


def print_packages(names: list[str] | None = None) -> None:
    from sfi_core.weights import missing_packages

    missing = missing_packages(names)
    if missing:
        typer.echo("Missing Python packages (the networks below need them; install these first):")
        for pip_line in dict.fromkeys(missing.values()):
            typer.echo(pip_line)
        typer.echo("")


def print_table(weights_dir: Path | None) -> list[dict]:
    rows = weights_rows(weights_dir)
    table = Table(title="sfi weights (nothing is downloaded implicitly)", show_lines=True)
    for column in ("name", "status", "path", "licence", "used by"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = STATUS_STYLE[row["status"]]
        label = "present, unverified" if row["status"] == "present" else row["status"]
        table.add_row(row["name"], f"[{style}]{label}[/{style}]", row["path"], row["license"], row["used_by"])
    Console(width=200).print(table)
    counts = {status: sum(row["status"] == status for row in rows) for status in STATUS_STYLE}
    typer.echo(
        f"{counts['verified']} verified, {counts['present']} present without a digest to check, "
        f"{counts['corrupt']} corrupt, {counts['missing']} missing. Metrics whose weights are missing or "
        f"corrupt are reported as 'not computed' with the reason."
    )
    for row in rows:
        if row["detail"]:
            typer.echo(row["detail"])
    unverified = [row["name"] for row in rows if row["status"] == "present"]
    if unverified:
        typer.echo(
            f"Record the digest of files placed by hand (later loads check it): sfi-bench weights --fetch {' '.join(unverified)}"
        )
    return rows


def sfi_bench_command() -> str:
    """`sfi-bench` when a new shell finds it on PATH, else the one next to this interpreter (a venv not activated)."""
    local = Path(sys.executable).parent / "sfi-bench"
    return "sfi-bench" if shutil.which("sfi-bench") or not local.is_file() else str(local)


def print_commands(rows: list[dict]) -> None:
    """Commands outside the table, one per line and never wrapped, so each can be copied and run as printed."""
    wanted = [row for row in rows if row["status"] in ("missing", "corrupt") and not row.get("served_by")]
    if not wanted:
        return
    typer.echo("\nFetch, check and record every missing file (the Wan 14B folders only when named):")
    typer.echo(f"{sfi_bench_command()} weights --fetch --all")
    by_hand = [row for row in wanted if row["command"]]
    if by_hand:
        typer.echo("\n# Or by hand, one command per line:")
        for row in by_hand:
            typer.echo(row["command"])
    for row in wanted:
        if not row["command"]:
            typer.echo(f"\n{row['name']}: {row['how_to_get']}")


def select(names: list[str], all_: bool, for_: bool) -> list[str]:
    """Entry names to fetch: named ones, every one but the named-only (--all), or those a metric/model loads."""
    from sfi_core.weights import WEIGHTS

    if all_:
        return [n for n, spec in WEIGHTS.items() if spec.fetchable and not spec.named_only]
    if not names:
        raise ValueError("name the weights to fetch, or pass --all, or --for METRIC_OR_MODEL...")
    if for_:
        users = users_of()
        chosen = []
        for user in names:
            loaded = [n for n, who in users.items() if user in who]
            if not loaded:
                known = sorted({u for who in users.values() for u in who})
                close = difflib.get_close_matches(user, known, n=3)
                hint = f" Did you mean {', '.join(close)}?" if close else f" Known: {', '.join(known)}"
                raise ValueError(f"no metric or model {user!r} loads weights.{hint}")
            chosen += [n for n in loaded if n not in chosen]
        return chosen
    for name in names:
        if name not in WEIGHTS:
            close = difflib.get_close_matches(name, list(WEIGHTS), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else f" Known: {', '.join(WEIGHTS)}"
            raise ValueError(f"unknown weights {name!r}.{hint}")
    return list(dict.fromkeys(names))


def run_fetch(names: list[str], weights_dir: Path | None, force: bool) -> int:
    """Fetch each entry; one line per entry, failures included. Returns how many failed."""
    from sfi_core.fetch import FetchError, fetch

    failed = 0
    for name in names:
        try:
            done = fetch(name, weights_dir, force=force)
        except FetchError as err:
            failed += 1
            typer.echo(f"error: {err}", err=True)
            continue
        except OSError as err:  # a full disk, an unwritable folder
            failed += 1
            typer.echo(f"error: {name}: {err}", err=True)
            continue
        typer.echo(f"{done.action}: {name} -> {done.path}")
    return failed


@app.command("weights")
def weights(
    names: Annotated[
        list[str] | None, typer.Argument(help="With --fetch: weights names (or, with --for, metrics/models).")
    ] = None,
    fetch_: Annotated[
        bool, typer.Option("--fetch", help="Download, check and record the named weights.")
    ] = False,
    all_: Annotated[
        bool, typer.Option("--all", help="With --fetch: every network except the Wan 14B folders.")
    ] = False,
    for_: Annotated[
        bool, typer.Option("--for", help="With --fetch: the names are metrics or models.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --fetch: download again even when in place.")
    ] = False,
    script: Annotated[
        Path | None,
        typer.Option("--script", help="Write a shell script that fetches everything into a folder."),
    ] = None,
    weights_dir: Annotated[
        Path | None,
        typer.Option("--weights-dir", help="Folder searched first for every file (and fetched into)."),
    ] = None,
) -> None:
    """List every pretrained network (missing packages first), its status and the exact commands that get it."""
    weights_dir = weights_dir or (
        Path(os.environ["SFI_WEIGHTS_DIR"]) if os.environ.get("SFI_WEIGHTS_DIR") else None
    )
    if script is not None:
        from sfi_core.weights.script import fetch_script

        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(fetch_script(script.name))
        script.chmod(0o755)
        typer.echo(f"wrote {script}: run `bash {script} DIR` where the Hub is reachable, copy DIR here, then")
        typer.echo("sfi-bench weights --fetch --all --weights-dir DIR")
        return
    if (names or all_ or for_ or force) and not fetch_:
        typer.echo(
            "error: names, --all, --for and --force go with --fetch (sfi-bench weights --fetch NAME...)",
            err=True,
        )
        raise typer.Exit(2)
    try:
        chosen = select(names or [], all_, for_) if fetch_ else None
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    print_packages(chosen)
    if for_ and chosen:
        from sfi_core.weights import WEIGHTS

        for name in [n for n in chosen if WEIGHTS[n].named_only]:
            typer.echo(
                f"held back {name} (tens of GB, fetched only by name): sfi-bench weights --fetch {name}"
            )
        chosen = [n for n in chosen if not WEIGHTS[n].named_only]
    failed = run_fetch(chosen, weights_dir, force) if chosen else 0
    print_commands(print_table(weights_dir))
    if failed:
        raise typer.Exit(1)
