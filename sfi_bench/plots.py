"""Leaderboard plots: one figure per metric, bars per model at each frame count, as PNG and SVG.

The legend sits outside the axes (right of them) so it never covers a bar; the SVG is for papers.
"""

from __future__ import annotations

import math
from pathlib import Path

from sfi_bench.leaderboard import ALL_GROUP, Leaderboard, MetricColumn

PLOT_FORMATS = ("png", "svg")


def _draw(board: Leaderboard, metric: MetricColumn, axes) -> int:
    """Grouped bars: x = frame count (All first), one bar per model; returns how many bars were drawn."""
    groups = board.groups
    width = 0.8 / max(1, len(board.models))
    drawn = 0
    for index, model in enumerate(board.models):
        xs, heights = [], []
        for position, group in enumerate(groups):
            value = board.value(model, group, metric.name)
            if value is not None and math.isfinite(value):
                xs.append(position - 0.4 + width * (index + 0.5))
                heights.append(value)
        axes.bar(xs, heights, width=width, label=model)
        drawn += len(xs)
    axes.set_xticks(range(len(groups)), labels=[g if g == ALL_GROUP else f"N={g}" for g in groups])
    return drawn


def place_legend(axes):
    """Right of the axes, top-aligned: outside every bar whatever the values."""
    return axes.legend(title="model", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def write_plots(board: Leaderboard, folder: Path, formats: tuple[str, ...] = PLOT_FORMATS) -> list[Path]:
    """One figure per metric in every format; a metric nobody computed says so instead of an empty frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in board.metrics:
        figure, axes = plt.subplots(figsize=(7.5, 3.4))
        if _draw(board, metric, axes):
            place_legend(axes)
        else:
            axes.text(0.5, 0.5, "not computed", ha="center", va="center", transform=axes.transAxes)
        axes.set_ylabel(metric.label)
        axes.set_title(f"{metric.label} ({metric.id}, v{metric.version})")
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        for suffix in formats:
            path = folder / f"{metric.id}.{suffix}"
            figure.savefig(path, dpi=130, bbox_inches="tight")
            written.append(path)
        plt.close(figure)
    return written
