"""Rich progress bars and summary tables shared by the sfi-data commands."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sfi_core.driver import StageSummary

# Logs and CI capture output without a terminal; give tables room there instead of Rich's 80 columns.
console = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 110)


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator:
    """Yield a callback (done, total) that drives one bar with ETA."""
    columns = [
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def summary_table(summary: StageSummary, unit: str, output_unit: str | None = None) -> Table:
    """Inputs, outputs by status and reason code, per-scale counts, thresholds, throughput."""
    table = Table(title=f"sfi-data {summary.stage}: summary", show_lines=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row(f"{unit} in", str(summary.total))
    out = f"{output_unit} " if output_unit else ""
    for status in ("ok", "rejected", "error"):
        table.add_row(f"  {out}{'kept' if status == 'ok' else status}", str(summary.statuses.get(status, 0)))
    for reason, n in summary.reasons.most_common():
        table.add_row(f"    {reason}", str(n))
    for scale, n in sorted(getattr(summary, "per_scale", {}).items()):  # cut (sfi_data.pipeline)
        table.add_row(f"  clips of {scale} frames", str(n))
    for name, (low, high, mode) in getattr(summary, "thresholds", {}).items():  # filter
        fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
        table.add_row(f"  {name} range", f"[{fmt(low)}, {fmt(high)}] ({mode})")
    table.add_row("done in an earlier run (same settings)", str(summary.skipped))
    if summary.retried:
        table.add_row("retried after an earlier error", str(summary.retried))
    rate = f"{summary.items_per_s:.2f}" if summary.processed else "-"
    table.add_row(f"{unit}/s (this run)", rate)
    return table


def show_summary(summary: StageSummary, unit: str, output_unit: str | None = None) -> None:
    """The summary table, then each warning on its own line (whole, so it can be read and grepped)."""
    console.print(summary_table(summary, unit, output_unit))
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
