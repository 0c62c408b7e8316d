"""The manifests a dataset card is drawn from, read once, and the counts the card and the plots share."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sfi_core.constants import STATUS_OK
from sfi_core.driver import reason_kind

SPLIT_RECORD = "split.json"


@dataclass
class DatasetTables:
    root: Path
    videos: list[dict] = field(default_factory=list)
    clips: list[dict] = field(default_factory=list)
    captions: list[dict] = field(default_factory=list)
    test: list[dict] = field(default_factory=list)
    train: list[dict] = field(default_factory=list)
    split: dict = field(default_factory=dict)  # split.json: the test videos, near-duplicate groups...
    settings: dict = field(default_factory=dict)  # stage -> the settings it recorded (work/<stage>/)
    categories: dict = field(default_factory=dict)  # clip_id -> (category, source), captioned ok clips

    @classmethod
    def load(cls, root: Path) -> DatasetTables:
        def rows(name: str) -> list[dict]:
            path = root / name
            return pq.read_table(path).to_pylist() if path.exists() else []

        record = root / SPLIT_RECORD
        tables = cls(
            root,
            rows("videos.parquet"),
            rows("clips.parquet"),
            rows("captions.parquet"),
            rows("test.parquet"),
            rows("train.parquet"),
            json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {},
            recorded_stage_settings(root),
        )
        tables.categories = clip_categories(root, tables.clips, tables.captions)
        if not tables.videos and not tables.clips:
            raise FileNotFoundError(
                f"no videos.parquet or clips.parquet in {root}: run `sfi-data filter INPUT... --out {root}` "
                f"and `sfi-data cut --out {root}` first"
            )
        return tables


def clip_categories(root: Path, clips: list[dict], captions: list[dict]) -> dict[str, tuple[str, str]]:
    """clip_id -> (category, source) of every ok clip with a caption (sfi_data.categorize)."""
    from sfi_data.categorize import categories_for

    text = {c["clip_id"]: c["caption"] for c in captions if c["status"] == STATUS_OK and c.get("caption")}
    rows = [
        {"clip_id": c["clip_id"], "caption": text[c["clip_id"]]}
        for c in clips
        if c["status"] == STATUS_OK and c["clip_id"] in text
    ]
    return categories_for(root, rows)


def category_counts(tables: DatasetTables) -> list[tuple[str, int, int, int]]:
    """(category, clips, test clips, train clips), the most clips first (ties by name)."""
    clips = Counter(category for category, _ in tables.categories.values())
    test = Counter(tables.categories.get(r["clip_id"], ("other",))[0] for r in tables.test)
    train = Counter(tables.categories.get(r["clip_id"], ("other",))[0] for r in tables.train)
    order = sorted(clips, key=lambda name: (-clips[name], name))
    return [(name, clips[name], test[name], train[name]) for name in order]


def recorded_stage_settings(root: Path) -> dict[str, dict]:
    """Every stage's recorded settings (DIR/work/<stage>/settings.json), in the order the stages ran."""
    from sfi_core.driver import recorded_settings

    work = root / "work"
    stages = sorted(work.iterdir(), key=lambda p: p.stat().st_mtime) if work.is_dir() else []
    found = {stage.name: recorded_settings(root, stage.name) for stage in stages if stage.is_dir()}
    return {name: settings for name, settings in found.items() if settings is not None}


def values(rows: list[dict], key: str) -> np.ndarray:
    """The finite values of `key`, as float64."""
    return np.asarray(
        [r[key] for r in rows if r.get(key) is not None and math.isfinite(r[key])], dtype=np.float64
    )


def first_value(rows: list[dict], key: str):
    return next((r[key] for r in rows if r.get(key) is not None), None)


def reject_group(row: dict) -> str:
    """What a reject or error is grouped by: its stable reason_code; in manifests older than that
    column, its reason with numbers and paths masked."""
    if "reason_code" in row:
        return row["reason_code"] or "unknown"
    return reason_kind(row.get("reason")) or "(no reason given)"


def reject_counts(tables: DatasetTables) -> Counter:
    """'video rejected: fps_too_high' -> count, over videos and clips."""
    counts: Counter = Counter()
    for table, unit in ((tables.videos, "video"), (tables.clips, "clip")):
        for row in table:
            if row["status"] != STATUS_OK:
                counts[f"{unit} {row['status']}: {reject_group(row)}"] += 1
    return counts


def reject_examples(tables: DatasetTables) -> dict[str, str]:
    """One human reason per reject group (the first met), so a code in the card reads as a sentence."""
    examples: dict[str, str] = {}
    for table, unit in ((tables.videos, "video"), (tables.clips, "clip")):
        for row in table:
            if row["status"] != STATUS_OK:
                examples.setdefault(f"{unit} {row['status']}: {reject_group(row)}", row.get("reason") or "")
    return examples
