"""`sfi-data stats`: a Markdown dataset card with plots of what the pipeline kept, cut, captioned and split."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sfi_core.manifest import atomic_path
from sfi_core.schemas import SCHEMA_VERSION, STATUS_OK

CARD_NAME = "DATASET_CARD.md"
PLOTS_DIR = "stats"

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


@dataclass
class DatasetTables:
    root: Path
    videos: list[dict] = field(default_factory=list)
    clips: list[dict] = field(default_factory=list)
    captions: list[dict] = field(default_factory=list)
    test: list[dict] = field(default_factory=list)
    train: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> DatasetTables:
        def rows(name: str) -> list[dict]:
            path = root / name
            return pq.read_table(path).to_pylist() if path.exists() else []

        tables = cls(
            root,
            rows("videos.parquet"),
            rows("clips.parquet"),
            rows("captions.parquet"),
            rows("test.parquet"),
            rows("train.parquet"),
        )
        if not tables.videos and not tables.clips:
            raise FileNotFoundError(
                f"no videos.parquet or clips.parquet in {root}: run `sfi-data filter` and `sfi-data cut` first"
            )
        return tables


def _values(rows: list[dict], key: str) -> np.ndarray:
    return np.asarray(
        [r[key] for r in rows if r.get(key) is not None and math.isfinite(r[key])], dtype=np.float64
    )


def _first(rows: list[dict], key: str):
    return next((r[key] for r in rows if r.get(key) is not None), None)


def reason_kind(reason: str | None) -> str:
    from sfi_data.pipeline import reason_kind as group

    return group(reason) or "(no reason given)"


# ---------------------------------------------------------------- plots


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
        _values([v for v in scored if v["status"] == STATUS_OK], key),
        _values([v for v in scored if v["status"] != STATUS_OK], key),
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
        bound = _first(videos, bound_key)
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
    sim_backend = _first(videos, "similarity_backend") or "similarity"
    flow_backend = _first(videos, "flow_backend") or "flow"
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
    bounds = [_first(videos, k) for k in ("similarity_low", "similarity_high", "flow_low", "flow_high")]
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
        kept = _values([v for v in videos if v["status"] == STATUS_OK], key)
        other = _values([v for v in videos if v["status"] != STATUS_OK], key)
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


def reject_counts(tables: DatasetTables) -> Counter:
    counts: Counter = Counter()
    for table, unit in ((tables.videos, "video"), (tables.clips, "clip")):
        for row in table:
            if row["status"] != STATUS_OK:
                counts[f"{unit} {row['status']}: {reason_kind(row.get('reason'))}"] += 1
    return counts


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


def plot_captions(tables: DatasetTables, out: Path) -> Path | None:
    ok = [c for c in tables.captions if c["status"] == STATUS_OK and c.get("caption")]
    if not ok:
        return None
    fig, (ax_len, ax_lat) = _figure(2, width=5.0)
    ax_len.hist([len(c["caption"].split()) for c in ok], bins=20, color=COLOURS["caption"], edgecolor="white")
    ax_len.set_xlabel("words per caption")
    ax_len.set_ylabel("captions")
    ax_len.set_title("Caption length")
    latency = _values(ok, "latency_s")
    ax_lat.hist(latency, bins=20, color=COLOURS["train"], edgecolor="white")
    ax_lat.set_xlabel("request latency, s")
    ax_lat.set_title("Caption latency")
    return _save(fig, out / "captions.png")


def plot_samples(tables: DatasetTables, out: Path, count: int = 4) -> Path | None:
    """First and last condition frames of a few clips (the longest scale), side by side."""
    import cv2

    clips = [c for c in tables.clips if c["status"] == STATUS_OK and c.get("first_frame_path")]
    clips = [c for c in clips if (tables.root / c["first_frame_path"]).exists()]
    if not clips:
        return None
    longest = max(int(c["num_frames"]) for c in clips)
    chosen = [c for c in clips if int(c["num_frames"]) == longest][:count]
    fig, grid = _pyplot().subplots(len(chosen), 2, figsize=(6.4, 2.0 * len(chosen) + 0.4), squeeze=False)
    for row_axes, clip in zip(grid, chosen, strict=True):
        for ax, key, title in (
            (row_axes[0], "first_frame_path", "first"),
            (row_axes[1], "last_frame_path", "last"),
        ):
            image = cv2.imread(str(tables.root / clip[key]), cv2.IMREAD_COLOR)
            if image is not None:
                ax.imshow(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            ax.set_title(f"{clip['clip_id']} — {title}", fontsize=8, fontweight="normal")
            ax.axis("off")
    return _save(fig, out / "samples.png")


# ---------------------------------------------------------------- card


def _table(header: list[str], rows: list[list]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _image(plots: dict[str, Path], name: str) -> list[str]:
    return [f"![{name.replace('_', ' ')}]({plots[name].as_posix()})", ""] if name in plots else []


def card_markdown(tables: DatasetTables, plots: dict[str, Path]) -> str:
    videos, clips = tables.videos, tables.clips
    v_status = Counter(v["status"] for v in videos)
    ok_clips = [c for c in clips if c["status"] == STATUS_OK]
    captioned = [c for c in tables.captions if c["status"] == STATUS_OK]
    failed_captions = [c for c in tables.captions if c["status"] != STATUS_OK]
    clip_hours = sum(int(c["num_frames"]) / c["fps"] for c in ok_clips if c.get("fps")) / 3600
    lines = [
        f"# Dataset card: {tables.root.resolve().name}",
        "",
        "An SFI-300K-style set of clips for semantic frame interpolation: videos filtered on their "
        "first/last-frame change, cut into centred clips of every scale, captioned and split "
        "(paper section 3.3).",
        "",
    ]
    overview = [
        ["input videos", len(videos)],
        ["videos kept", v_status.get("ok", 0)],
        ["videos rejected", v_status.get("rejected", 0)],
        ["videos unreadable (error)", v_status.get("error", 0)],
        ["clips", len(ok_clips)],
        ["clip footage, hours", f"{clip_hours:.2f}"],
        [
            "clips captioned",
            f"{len(captioned)} of {len(ok_clips)}"
            + (f" ({len(failed_captions)} failed)" if failed_captions else ""),
        ],
    ]
    if tables.test or tables.train:
        overview += [
            [
                "SFIBench test clips / videos",
                f"{len(tables.test)} / {len({c['video_id'] for c in tables.test})}",
            ],
            ["train clips", len(tables.train)],
        ]
    lines += ["## Overview", "", _table(["", "count"], overview), ""]
    if "samples" in plots:
        lines += ["## First and last frames", "", f"![samples]({plots['samples']})", ""]
    sample_captions = [c for c in captioned if c.get("caption")][:3]
    if sample_captions:
        lines += ["## Example captions", ""]
        for cap in sample_captions:
            lines += [
                f"**{cap['clip_id']}** ({cap['num_frames']} frames, {cap['model']}, {cap['prompt_version']}):",
                "",
                f"> {cap['caption']}",
                "",
            ]
    if any(v.get("similarity") is not None or v.get("flow_score") is not None for v in videos):
        sim_b, flow_b = _first(videos, "similarity_backend"), _first(videos, "flow_backend")
        lines += [
            "## First/last-frame scores",
            "",
            f"Similarity by `{sim_b}`, flow by `{flow_b}` (paper Fig. 3b). Videos outside the dashed "
            f"bounds are rejected: similarity in [{_fmt(_first(videos, 'similarity_low'))}, "
            f"{_fmt(_first(videos, 'similarity_high'))}], flow in [{_fmt(_first(videos, 'flow_low'))}, "
            f"{_fmt(_first(videos, 'flow_high'))}] ({_first(videos, 'threshold_mode') or 'no thresholds'}).",
            "",
            *_image(plots, "scores"),
        ]
    if ok_clips:
        per_scale = Counter(int(c["num_frames"]) for c in ok_clips)
        cap_scale = Counter(int(c["num_frames"]) for c in captioned if c.get("num_frames") is not None)
        test_scale = Counter(int(c["num_frames"]) for c in tables.test)
        rows = [
            [
                s,
                per_scale[s],
                cap_scale[s],
                test_scale[s],
                per_scale[s] - test_scale[s] if tables.test else "—",
            ]
            for s in sorted(per_scale)
        ]
        lines += [
            "## Clips per scale",
            "",
            _table(["frames", "clips", "captioned", "test", "train"], rows),
            "",
            *_image(plots, "scales"),
        ]
    if any(v.get("fps") is not None for v in videos):
        fps = _values(videos, "fps")
        dur = _values(videos, "duration_s")
        lines += [
            "## Source videos",
            "",
            f"Frame rate {fps.min():.3g}–{fps.max():.3g} fps (median {np.median(fps):.3g}); duration "
            f"{dur.min():.3g}–{dur.max():.3g} s (median {np.median(dur):.3g}).",
            "",
            *_image(plots, "video_meta"),
        ]
    rejects = reject_counts(tables).most_common()
    if rejects:
        lines += [
            "## Why inputs were dropped",
            "",
            _table(["reason", "count"], [[r, n] for r, n in rejects]),
            "",
        ]
        if "rejects" in plots:
            lines += [f"![rejects]({plots['rejects']})", ""]
    if any(c.get("caption") for c in captioned):
        words = [len(c["caption"].split()) for c in captioned if c.get("caption")]
        tokens = _values(captioned, "total_tokens")
        models = Counter(f"{c['model']} / {c['prompt_version']}" for c in captioned)
        lines += [
            "## Captions",
            "",
            f"{len(words)} captions, {np.median(words):.0f} words (median); "
            f"{np.mean(tokens):.0f} tokens per request (mean)."
            if tokens.size
            else f"{len(words)} captions.",
            "",
            _table(["model / prompt", "captions"], [[m, n] for m, n in models.most_common()]),
            "",
            *_image(plots, "captions"),
        ]
    lines += [
        "## Files",
        "",
        _table(
            ["file", "what"],
            [
                ["videos.parquet", "one row per input video, rejects and errors with their reason"],
                ["clips.parquet", "one row per clip (paths relative to this folder)"],
                ["captions.parquet", "one row per clip: caption, model, prompt version, tokens, latency"],
                ["test.parquet / train.parquet", "SFIBench split: clip columns + caption"],
            ],
        ),
        "",
        f'Manifest schema version {SCHEMA_VERSION}. Load with `datasets.load_dataset("parquet", '
        "data_files=...)`, duckdb, pandas or `sfi_core.dataset.SFIClipDataset`.",
        "",
    ]
    return "\n".join(lines)


def write_card(root: Path, with_plots: bool = True) -> Path:
    """Write DIR/DATASET_CARD.md and its plots under DIR/stats/; returns the card's path."""
    root = Path(root)
    tables = DatasetTables.load(root)
    out = root / PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    for name, plot in (
        ("scores", plot_scores),
        ("scales", plot_scales),
        ("video_meta", plot_video_meta),
        ("rejects", plot_rejects),
        ("captions", plot_captions),
        ("samples", plot_samples),
    ):
        path = plot(tables, out) if with_plots else None
        if path is not None:
            plots[name] = path.relative_to(root)
    card = root / CARD_NAME
    with atomic_path(card) as tmp:
        tmp.write_text(card_markdown(tables, plots), encoding="utf-8")
    return card
