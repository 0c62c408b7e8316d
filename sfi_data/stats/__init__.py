"""`sfi-data stats`: a Markdown dataset card with plots of what the pipeline kept, cut, captioned and split.

The tables come from the manifests (sfi_data.stats.tables), the figures from sfi_data.stats.plots and
the Markdown from sfi_data.stats.card. The sample sheet decodes clips with the reader `cut` recorded.
"""

from __future__ import annotations

from pathlib import Path

from sfi_core.manifest import atomic_path
from sfi_data.config_dataset import StatsConfig, resolve_reader
from sfi_data.stats.card import card_markdown
from sfi_data.stats.plots import (
    plot_captions,
    plot_categories,
    plot_rejects,
    plot_samples,
    plot_scales,
    plot_scores,
    plot_video_meta,
)
from sfi_data.stats.tables import DatasetTables, reject_counts  # noqa: F401 - re-exported

CARD_NAME = "DATASET_CARD.md"
PLOTS_DIR = "stats"


def write_card(root: Path, with_plots: bool = True, config: StatsConfig | None = None) -> Path:
    """Write DIR/DATASET_CARD.md and its plots under DIR/stats/; returns the card's path."""
    root = Path(root)
    config = config or StatsConfig(plots=with_plots)
    tables = DatasetTables.load(root)
    reader = resolve_reader(root, config.reader)
    out = root / PLOTS_DIR
    plots: dict[str, Path] = {}
    if config.plots and with_plots:
        out.mkdir(parents=True, exist_ok=True)
        for name, plot in (
            ("scores", plot_scores),
            ("scales", plot_scales),
            ("video_meta", plot_video_meta),
            ("rejects", plot_rejects),
            ("captions", plot_captions),
            ("categories", plot_categories),
            ("samples", lambda t, o: plot_samples(t, o, config.samples, reader)),
        ):
            path = plot(tables, out)
            if path is not None:
                plots[name] = path.relative_to(root)
    card = root / CARD_NAME
    with atomic_path(card) as tmp:
        tmp.write_text(card_markdown(tables, plots), encoding="utf-8")
    return card
