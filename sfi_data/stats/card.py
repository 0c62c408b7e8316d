"""The dataset card's Markdown: overview, samples, scores, scales, sources, rejects by code, captions, split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from sfi_core.constants import STATUS_OK
from sfi_core.schemas import SCHEMA_VERSION
from sfi_data.stats.tables import (
    DatasetTables,
    category_counts,
    first_value,
    reject_counts,
    reject_examples,
    values,
)


def _table(header: list[str], rows: list[list]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def _cell(text: str | None, limit: int = 90) -> str:
    """Text fit for one Markdown table cell: one line, no pipes, not too long."""
    text = " ".join((text or "").split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_section(tables: DatasetTables) -> list[str]:
    """The split's groups: near-duplicate footage found by the frame hashes stays on one side."""
    record = tables.split
    if not record:
        return []
    groups = record.get("near_duplicate_groups") or []
    unhashed = record.get("unhashed_videos") or []
    tested = set(record.get("test_videos") or [])
    lines = [
        "## Split",
        "",
        f"{len(tested)} test videos chosen with seed {record.get('config', {}).get('seed')} among "
        f"{record.get('num_eligible_groups', record.get('num_eligible_videos'))} groups of footage "
        f"({record.get('num_eligible_videos')} eligible videos). A group (the segments of one file, and "
        "near-duplicates: re-encodes, resizes, crops of one footage, found by a perceptual hash of their "
        f"frames) stays whole on one side; {record.get('num_excluded_clips', 0)} clips of tested groups "
        "are in neither split.",
        "",
    ]
    if groups:
        rows = [[", ".join(group), "test" if tested & set(group) else "train"] for group in groups]
        lines += [_table(["near-duplicate group", "side"], rows), ""]
    else:
        lines += ["No near-duplicate footage found.", ""]
    if unhashed:
        lines += [
            f"**Warning:** {len(unhashed)} videos could not be hashed (unreadable clips) and are grouped "
            "by their source file only; see the log.",
            "",
        ]
    return lines


def _flat(settings: dict, prefix: str = "") -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            items += _flat(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _settings_section(tables: DatasetTables) -> list[str]:
    """The settings each stage recorded next to its output: how to make this dataset again."""
    if not tables.settings:
        return []
    rows = [
        [stage, f"`{key}`", _cell(str(value))]
        for stage, s in tables.settings.items()
        for key, value in _flat(s)
    ]
    return [
        "## Settings",
        "",
        "As each stage recorded them (DIR/work/<stage>/settings.json).",
        "",
        _table(["stage", "setting", "value"], rows),
        "",
    ]


def _image(plots: dict[str, Path], name: str) -> list[str]:
    return [f"![{name.replace('_', ' ')}]({plots[name].as_posix()})", ""] if name in plots else []


def _categories_section(tables: DatasetTables, plots: dict[str, Path]) -> list[str]:
    """Clips per content category (paper Fig. 3a), with where the categories came from."""
    from sfi_core.categories import LABELS

    counts = category_counts(tables)
    if not counts:
        return []
    total = sum(n for _, n, _, _ in counts)
    sources = Counter(source for _, source in tables.categories.values())
    split = bool(tables.test or tables.train)
    header = ["category", "clips", "share"] + (["test clips", "train clips"] if split else [])
    rows = [
        [f"{LABELS.get(name, name)} (`{name}`)", n, f"{100 * n / total:.1f}%"]
        + ([n_test, n_train] if split else [])
        for name, n, n_test, n_train in counts
    ]
    return [
        "## Content categories",
        "",
        f"{total} captioned clips by the category of their caption; categories from "
        + ", ".join(f"`{source}` ({n})" for source, n in sources.most_common())
        + " (`sfi-data categorize`; the keyword taxonomy is documented in docs/data.md).",
        "",
        _table(header, rows),
        "",
        *_image(plots, "categories"),
    ]


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
        lines += ["## First, middle and last frames", "", f"![samples]({plots['samples']})", ""]
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
        sim_b, flow_b = first_value(videos, "similarity_backend"), first_value(videos, "flow_backend")
        lines += [
            "## First/last-frame scores",
            "",
            f"Similarity by `{sim_b}`, flow by `{flow_b}` (paper Fig. 3b). Videos outside the dashed "
            f"bounds are rejected: similarity in [{_fmt(first_value(videos, 'similarity_low'))}, "
            f"{_fmt(first_value(videos, 'similarity_high'))}], flow in [{_fmt(first_value(videos, 'flow_low'))}, "
            f"{_fmt(first_value(videos, 'flow_high'))}] ({first_value(videos, 'threshold_mode') or 'no thresholds'}).",
            "",
        ]
        warning = first_value(videos, "threshold_warning")
        lines += [f"**Warning:** {warning}", ""] if warning else []
        lines += _image(plots, "scores")
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
        fps = values(videos, "fps")
        dur = values(videos, "duration_s")
        lines += [
            "## Source videos",
            "",
            f"Frame rate {fps.min():.3g}–{fps.max():.3g} fps (median {np.median(fps):.3g}); duration "
            f"{dur.min():.3g}–{dur.max():.3g} s (median {np.median(dur):.3g}).",
            "",
            *_image(plots, "video_meta"),
        ]
    rejects = reject_counts(tables).most_common()
    examples = reject_examples(tables)
    if rejects:
        lines += [
            "## Why inputs were dropped",
            "",
            "Grouped by `reason_code` (manifests/README.md lists the codes); the example is the first "
            "row's own reason.",
            "",
            _table(["reason", "count", "example"], [[r, n, _cell(examples.get(r))] for r, n in rejects]),
            "",
        ]
        if "rejects" in plots:
            lines += [f"![rejects]({plots['rejects']})", ""]
    if any(c.get("caption") for c in captioned):
        words = [len(c["caption"].split()) for c in captioned if c.get("caption")]
        tokens = values(captioned, "total_tokens")
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
    lines += _categories_section(tables, plots)
    lines += _split_section(tables)
    lines += _settings_section(tables)
    lines += [
        "## Files",
        "",
        _table(
            ["file", "what"],
            [
                ["videos.parquet", "one row per input video, rejects and errors with their reason"],
                ["clips.parquet", "one row per clip (paths relative to this folder)"],
                ["captions.parquet", "one row per clip: caption, model, prompt version, tokens, latency"],
                ["categories.parquet", "one row per captioned clip: content category and its source"],
                ["test.parquet / train.parquet", "SFIBench split: clip columns + caption + category"],
            ],
        ),
        "",
        f'Manifest schema version {SCHEMA_VERSION}. Load with `datasets.load_dataset("parquet", '
        "data_files=...)`, duckdb, pandas or `sfi_core.dataset.SFIClipDataset`.",
        "",
    ]
    return "\n".join(lines)
