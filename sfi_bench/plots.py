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
    heights_all: list[float] = []
    for index, model in enumerate(board.models):
        xs, heights = [], []
        for position, group in enumerate(groups):
            value = board.value(model, group, metric.name)
            if value is not None and math.isfinite(value):
                xs.append(position - 0.4 + width * (index + 0.5))
                heights.append(value)
        axes.bar(xs, heights, width=width, label=model)
        drawn += len(xs)
        heights_all += heights
    _zoom(axes, heights_all)
    axes.set_xticks(range(len(groups)), labels=[g if g == ALL_GROUP else f"N={g}" for g in groups])
    return drawn


def _zoom(axes, values: list[float]) -> None:
    """Models often differ by a few percent (PSNR 26.6 vs 27.9): show that range, not 0..max."""
    if not values:
        return
    low, high = min(values), max(values)
    pad = max((high - low) * 0.15, abs(high) * 0.01, 1e-9)
    if low > 0 and low - pad > 0:
        axes.set_ylim(low - pad, high + pad)


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
        axes.set_title(f"{metric.label} ({metric.id})")  # versions are in the results JSON and the Markdown
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        for suffix in formats:
            path = folder / f"{metric.id}.{suffix}"
            figure.savefig(path, dpi=130, bbox_inches="tight")
            written.append(path)
        plt.close(figure)
    return written
