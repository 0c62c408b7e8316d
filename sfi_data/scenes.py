"""Driver side of `sfi-data scenes`: split sources into shots, write DIR/scenes.parquet, feed the filter.

Runs the ScenesStage through the same `run_stage` as the filter (Ray or local, one part file per
shard, finished shards skipped on rerun). `segments_as_videos` turns the ok segment rows into the
input rows of `run_filter(..., videos=...)`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow.parquet as pq

from sfi_core.manifest import read_rows, write_rows
from sfi_core.schemas import SEGMENTS, STATUS_ERROR, STATUS_OK
from sfi_data.config import RunConfig, ScenesConfig, to_dict
from sfi_data.discover import discover
from sfi_data.pipeline import (
    NothingToDoError,
    Progress,
    StageSummary,
    count,
    remove_stale_temporaries,
    run_stage,
    setup_logging,
)
from sfi_data.stages.scenes import ScenesStage, resolved_threshold

log = logging.getLogger("sfi_data")

SCENES_MANIFEST = "scenes.parquet"


class SettingsChangedError(ValueError):
    """Finished work on disk was made with other detector settings than this run's."""


def merge_segment_parts(parts_dir: Path, video_ids: list[str]) -> list[dict]:
    """All segment rows, sources in input order, segments in frame order; the newest part wins per source."""
    newest: dict[str, tuple[float, list[dict]]] = {}
    if parts_dir.exists():
        for part in sorted(parts_dir.glob("part-*.parquet")):
            mtime = part.stat().st_mtime
            by_source: dict[str, list[dict]] = {}
            for row in pq.read_table(part, schema=SEGMENTS).to_pylist():
                by_source.setdefault(row["video_id"], []).append(row)
            for video_id, rows in by_source.items():
                held = newest.get(video_id)
                if held is None or held[0] <= mtime:
                    newest[video_id] = (mtime, rows)
    merged = []
    for video_id in video_ids:
        if video_id in newest:
            merged.extend(sorted(newest[video_id][1], key=lambda r: r["segment_start"] or 0))
    return merged


def check_settings(parts_dir: Path, config: ScenesConfig) -> None:
    """Refuse to mix segments found with different detector settings in one manifest."""
    if not parts_dir.exists():
        return
    wanted = (config.detector, resolved_threshold(config), config.min_scene_len)
    for part in sorted(parts_dir.glob("part-*.parquet")):
        table = pq.read_table(part, columns=["detector", "detector_threshold", "min_scene_len"])
        for found in set(zip(*(table.column(i).to_pylist() for i in range(3)), strict=True)):
            if found != wanted:
                raise SettingsChangedError(
                    f"{parts_dir} holds segments found with detector={found[0]} threshold={found[1]} "
                    f"min_scene_len={found[2]}, not {wanted[0]}/{wanted[1]}/{wanted[2]}; "
                    "rerun with --overwrite (or use another --out)"
                )


def run_scenes(
    inputs: list[str],
    out_dir: Path,
    config: ScenesConfig | None = None,
    run: RunConfig | None = None,
    list_files: list[str] | None = None,
    progress: Progress | None = None,
) -> StageSummary:
    """Detect the shots of every input and write one row per segment to DIR/scenes.parquet."""
    config = config or ScenesConfig()
    run = run or RunConfig()
    out_dir = Path(out_dir)
    setup_logging(out_dir)
    remove_stale_temporaries(out_dir)
    rows = discover(inputs, out_dir, list_files or [])
    if not rows:
        raise NothingToDoError(f"no inputs found in {inputs}")
    stage = ScenesStage(out_dir, config)
    stage.check_installed()
    parts_dir = out_dir / "work" / stage.name
    if not run.overwrite:
        check_settings(parts_dir, config)
    log.info("scenes: %d inputs; settings %s", len(rows), to_dict(config))
    summary = run_stage(stage, rows, out_dir, SEGMENTS, run, progress)
    merged = merge_segment_parts(parts_dir, [r["video_id"] for r in rows])
    missing = {r["video_id"] for r in rows} - {r["video_id"] for r in merged}
    if missing:
        raise RuntimeError(f"internal error: {len(missing)} inputs have no row after scene splitting")
    write_rows(merged, SEGMENTS, out_dir / SCENES_MANIFEST)
    count(summary, merged)
    if summary.statuses.get(STATUS_ERROR, 0) == len(merged):
        raise NothingToDoError(
            f"none of the {len(merged)} inputs could be read; see {out_dir / SCENES_MANIFEST}"
        )
    return summary


def scenes_manifest(path: Path) -> Path:
    """A scenes.parquet named directly, or the one in a dataset folder."""
    path = Path(path)
    manifest = path / SCENES_MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: run `sfi-data scenes INPUT... --out {path}` first")
    return manifest


def segments_as_videos(manifest: Path, out_dir: Path) -> tuple[list[dict], int]:
    """Input rows for `run_filter(videos=...)` from the ok segments, and how many sources had errors.

    The segment id becomes the video id. A virtual segment keeps its source path and frame range; a
    written segment file is an ordinary whole file. Paths are rebased from the scenes manifest's
    folder to `out_dir`.
    """
    manifest = Path(manifest)
    base, out_dir = manifest.parent.resolve(), Path(out_dir).resolve()
    rows, errors = [], 0
    for seg in read_rows(manifest):
        if seg["status"] != STATUS_OK:
            errors += 1
            continue
        written = seg.get("segment_path")
        rel = written or seg["path"]
        rows.append(
            {
                "video_id": seg["segment_id"],
                "source": seg["source"],
                "path": os.path.relpath(os.path.normpath(base / rel), out_dir),
                "segment_start": None if written else seg["segment_start"],
                "segment_end": None if written else seg["segment_end"],
            }
        )
    return rows, errors
