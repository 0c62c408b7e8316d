"""Driver side of `sfi-data scenes`: split sources into shots, write DIR/scenes.parquet, feed the filter.

Runs the ScenesStage through the same `run_stage` and part-file merge as the filter (Ray or local,
one part file per shard, finished shards skipped on rerun, other detector settings refused).
`segments_as_videos` turns the ok segment rows into the input rows of `run_filter(..., videos=...)`.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.driver import (
    NothingToDoError,
    Progress,
    StageSummary,
    count,
    remove_stale_temporaries,
    run_stage,
    setup_logging,
)
from sfi_core.manifest import read_rows, write_rows
from sfi_core.manifest_table import merge_parts
from sfi_core.schemas import SEGMENTS
from sfi_data.config import RunConfig, ScenesConfig, to_dict, validate
from sfi_data.discover import discover, skipped_note
from sfi_data.stages.scenes import ScenesStage

log = logging.getLogger("sfi_data")

SCENES_MANIFEST = "scenes.parquet"


def run_scenes(
    inputs: list[str],
    out_dir: Path,
    config: ScenesConfig | None = None,
    run: RunConfig | None = None,
    list_files: list[str] | None = None,
    progress: Progress | None = None,
) -> StageSummary:
    """Detect the shots of every input and write one row per segment to DIR/scenes.parquet."""
    config = validate(config or ScenesConfig())
    run = validate(run or RunConfig())
    out_dir = Path(out_dir)
    setup_logging(out_dir)
    remove_stale_temporaries(out_dir)
    not_video: Counter = Counter()
    rows = discover(inputs, out_dir, list_files or [], not_video)
    skipped = skipped_note(not_video)
    if skipped:
        log.info("scenes: %s", skipped)
    if not rows:
        raise NothingToDoError(f"no inputs found in {inputs}")
    stage = ScenesStage(out_dir, config)
    stage.check_installed()
    log.info("scenes: %d inputs; settings %s", len(rows), to_dict(config))
    summary = run_stage(stage, rows, out_dir, SEGMENTS, run, progress)
    if skipped:
        summary.warnings.append(skipped)
    merged = merge_parts(out_dir / "work" / stage.name, SEGMENTS, "video_id", [r["video_id"] for r in rows])
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
