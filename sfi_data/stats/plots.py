"""The dataset card's plots (matplotlib, Agg): scores with their thresholds, scales, sources, rejects, captions, samples."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from sfi_core.constants import DEFAULT_READER, STATUS_OK
from sfi_core.manifest import atomic_path
from sfi_data.stats.samples import sample_frames
from sfi_data.stats.tables import DatasetTables, category_counts, first_value, reject_counts, values

log = logging.getLogger(__name__)

# One palette for every figure: kept / rejected / error, and the two splits.
COLOURS = {
    "ok": "#2a9d8f",
    "rejected": "#e76f51",
    "error": "#6c757d",
    "train": "#264653",
    "test": "#e9c46a",
    "line": "#1d3557",
    "caption": "#8d99ae",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "font.size": 10,
            "axes.titleweight": "bold",
        }
    )
    return plt


def _figure(ncols: int = 1, width: float = 6.0, height: float = 3.6):
    fig, axes = _pyplot().subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _score_panel(ax, videos: list[dict], key: str, low_key: str, high_key: str, label: str) -> None:
    scored = [v for v in videos if v.get(key) is not None]
    kept, dropped = (
        values([v for v in scored if v["status"] == STATUS_OK], key),
        values([v for v in scored if v["status"] != STATUS_OK], key),
    )
    both = np.concatenate([kept, dropped])
    bins = (
        np.histogram_bin_edges(both, bins=min(40, max(8, int(np.sqrt(both.size)) * 2))) if both.size else 10
    )
    ax.hist(
        [kept, dropped],
        bins=bins,
        stacked=True,
        color=[COLOURS["ok"], COLOURS["rejected"]],
        label=[f"kept ({kept.size})", f"rejected ({dropped.size})"],
        edgecolor="white",
        linewidth=0.4,
    )
    for bound_key, name in ((low_key, "low"), (high_key, "high")):
        bound = first_value(videos, bound_key)
        if bound is not None:
            ax.axvline(bound, color=COLOURS["line"], linestyle="--", linewidth=1.4)
            ax.annotate(
                f"{name} {bound:.3g}",
                (bound, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                color=COLOURS["line"],
            )
    ax.set_xlabel(label)
    ax.set_ylabel("videos")
    _integer_counts(ax)
    ax.legend(frameon=False, fontsize=8)


def _integer_counts(ax, axis: str = "y") -> None:
    from matplotlib.ticker import MaxNLocator

    (ax.yaxis if axis == "y" else ax.xaxis).set_major_locator(MaxNLocator(integer=True))


def plot_scores(tables: DatasetTables, out: Path) -> Path | None:
    """Paper Fig. 3b: first-vs-last similarity and flow over every scored video, thresholds drawn."""
    videos = [v for v in tables.videos if v.get("similarity") is not None or v.get("flow_score") is not None]
    if not videos:
        return None
    sim_backend = first_value(videos, "similarity_backend") or "similarity"
    flow_backend = first_value(videos, "flow_backend") or "flow"
    fig, (ax_sim, ax_flow, ax_both) = _figure(3, width=4.6)
    _score_panel(
        ax_sim,
        videos,
        "similarity",
        "similarity_low",
        "similarity_high",
        f"first/last similarity ({sim_backend})",
    )
    ax_sim.set_title("Similarity score")
    _score_panel(
        ax_flow, videos, "flow_score", "flow_low", "flow_high", f"first/last flow, px ({flow_backend})"
    )
    ax_flow.set_title("Flow score")
    for status in ("rejected", "ok"):
        pts = [
            v
            for v in videos
            if (v["status"] == STATUS_OK) == (status == "ok")
            and v.get("similarity") is not None
            and v.get("flow_score") is not None
        ]
        ax_both.scatter(
            [v["similarity"] for v in pts],
            [v["flow_score"] for v in pts],
            s=10,
            alpha=0.7,
            color=COLOURS[status],
            label="kept" if status == "ok" else "rejected",
        )
    bounds = [first_value(videos, k) for k in ("similarity_low", "similarity_high", "flow_low", "flow_high")]
    if all(b is not None for b in bounds):
        import matplotlib.patches as patches

        s_lo, s_hi, f_lo, f_hi = bounds
        ax_both.add_patch(
            patches.Rectangle(
                (s_lo, f_lo),
                s_hi - s_lo,
                f_hi - f_lo,
                fill=False,
                edgecolor=COLOURS["line"],
                linestyle="--",
                linewidth=1.2,
            )
        )
    ax_both.set_xlabel(f"similarity ({sim_backend})")
    ax_both.set_ylabel(f"flow ({flow_backend})")
    ax_both.set_title("Keep box")
    ax_both.legend(frameon=False, fontsize=8)
    return _save(fig, out / "scores.png")


def plot_scales(tables: DatasetTables, out: Path) -> Path | None:
    clips = [c for c in tables.clips if c["status"] == STATUS_OK]
    if not clips:
        return None
    scales = sorted({int(c["num_frames"]) for c in clips})
    fig, (ax,) = _figure(1, width=7.0)
    x = np.arange(len(scales))
    if tables.test or tables.train:
        test = Counter(int(c["num_frames"]) for c in tables.test)
        train = Counter(int(c["num_frames"]) for c in tables.train)
        ax.bar(x, [train[s] for s in scales], color=COLOURS["train"], label="train")
        ax.bar(
            x,
            [test[s] for s in scales],
            bottom=[train[s] for s in scales],
            color=COLOURS["test"],
            label="test (SFIBench)",
        )
        totals = [train[s] + test[s] for s in scales]
    else:
        counts = Counter(int(c["num_frames"]) for c in clips)
        totals = [counts[s] for s in scales]
        ax.bar(x, totals, color=COLOURS["ok"], label="clips")
    for xi, total in zip(x, totals, strict=True):
        ax.annotate(str(total), (xi, total), ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [f"{s} frames" for s in scales])
    ax.set_ylabel("clips")
    ax.set_title("Clips per scale")
    ax.legend(frameon=False)
    return _save(fig, out / "scales.png")


def plot_video_meta(tables: DatasetTables, out: Path) -> Path | None:
    videos = [v for v in tables.videos if v.get("fps") is not None]
    if not videos:
        return None
    fig, (ax_fps, ax_dur, ax_res) = _figure(3, width=4.4)
    for ax, key, label in ((ax_fps, "fps", "frames per second"), (ax_dur, "duration_s", "duration, s")):
        kept = values([v for v in videos if v["status"] == STATUS_OK], key)
        other = values([v for v in videos if v["status"] != STATUS_OK], key)
        ax.hist(
            [kept, other],
            bins=20,
            stacked=True,
            color=[COLOURS["ok"], COLOURS["rejected"]],
            label=["kept", "rejected/error"],
            edgecolor="white",
            linewidth=0.4,
        )
        ax.set_xlabel(label)
        ax.set_ylabel("videos")
        _integer_counts(ax)
        ax.legend(frameon=False, fontsize=8)
    ax_fps.set_title("Frame rate")
    ax_dur.set_title("Duration")
    sizes = Counter(f"{v['width']}x{v['height']}" for v in videos if v.get("width"))
    top = sizes.most_common(8)
    ax_res.barh(
        [name for name, _ in reversed(top)], [n for _, n in reversed(top)], color=COLOURS["train"], height=0.6
    )
    _integer_counts(ax_res, "x")
    ax_res.set_xlabel("videos")
    ax_res.set_title("Resolution (top 8)")
    return _save(fig, out / "video_meta.png")


def plot_rejects(tables: DatasetTables, out: Path) -> Path | None:
    counts = reject_counts(tables).most_common(12)
    if not counts:
        return None
    fig, (ax,) = _figure(1, width=9.0, height=0.45 * len(counts) + 1.2)
    labels = [name if len(name) <= 70 else name[:69] + "…" for name, _ in reversed(counts)]
    colours = [COLOURS["error"] if " error:" in name else COLOURS["rejected"] for name, _ in reversed(counts)]
    ax.barh(labels, [n for _, n in reversed(counts)], color=colours)
    ax.set_xlabel("count")
    ax.set_title("Why inputs were dropped")
    return _save(fig, out / "rejects.png")


def plot_categories(tables: DatasetTables, out: Path) -> Path | None:
    """Clips per content category (paper Fig. 3a), train and test stacked when split."""
    from sfi_core.categories import LABELS

    counts = category_counts(tables)
    if not counts:
        return None
    fig, (ax,) = _figure(1, width=7.0, height=0.45 * len(counts) + 1.2)
    labels = [LABELS.get(name, name) for name, *_ in reversed(counts)]
    if tables.test or tables.train:
        train = [n_train for *_, n_train in reversed(counts)]
        test = [n_test for _, _, n_test, _ in reversed(counts)]
        ax.barh(labels, train, color=COLOURS["train"], label="train")
        ax.barh(labels, test, left=train, color=COLOURS["test"], label="test (SFIBench)")
        ax.legend(frameon=False, fontsize=8)
    else:
        ax.barh(labels, [n for _, n, _, _ in reversed(counts)], color=COLOURS["ok"])
    _integer_counts(ax, "x")
    ax.set_xlabel("clips")
    ax.set_title("Clips per content category")
    return _save(fig, out / "categories.png")


def plot_captions(tables: DatasetTables, out: Path) -> Path | None:
    ok = [c for c in tables.captions if c["status"] == STATUS_OK and c.get("caption")]
    if not ok:
        return None
    fig, (ax_len, ax_lat) = _figure(2, width=5.0)
    ax_len.hist([len(c["caption"].split()) for c in ok], bins=20, color=COLOURS["caption"], edgecolor="white")
    ax_len.set_xlabel("words per caption")
    ax_len.set_ylabel("captions")
    ax_len.set_title("Caption length")
    latency = values(ok, "latency_s")
    ax_lat.hist(latency, bins=20, color=COLOURS["train"], edgecolor="white")
    ax_lat.set_xlabel("request latency, s")
    ax_lat.set_title("Caption latency")
    return _save(fig, out / "captions.png")


def plot_samples(
    tables: DatasetTables, out: Path, count: int = 4, reader: str = DEFAULT_READER
) -> Path | None:
    """First, middle and last frame of a few clips (the longest scale), decoded as training reads them."""
    samples = sample_frames(tables, count, reader)
    if not samples:
        return None
    fig, grid = _pyplot().subplots(len(samples), 3, figsize=(8.4, 2.0 * len(samples) + 0.4), squeeze=False)
    for row_axes, (clip_id, frames) in zip(grid, samples, strict=True):
        for ax, frame, title in zip(row_axes, frames, ("first", "middle", "last"), strict=True):
            ax.imshow(frame)
            ax.set_title(f"{clip_id} — {title}", fontsize=8, fontweight="normal")
            ax.axis("off")
    return _save(fig, out / "samples.png")
