"""Checks that a clip manifest is one, and sits where its relative paths lead: one line saying what to do."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# What every clip manifest (clips, train, test) has; videos.parquet has none of them.
CLIP_COLUMNS = ("clip_id", "num_frames", "clip_path")
CLIP_MANIFEST_HINT = "give DIR/test.parquet (from `sfi-data split --out DIR`) or DIR/clips.parquet"


def require_clip_manifest(manifest: Path) -> None:
    """ValueError unless `manifest` is a Parquet file with the clip columns (not videos.parquet, not JSON)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(manifest).names
    except pa.ArrowException as error:
        raise ValueError(f"{manifest} is not a Parquet manifest: {CLIP_MANIFEST_HINT}") from error
    missing = [column for column in CLIP_COLUMNS if column not in names]
    if missing:
        kind = " (it is a videos manifest)" if "video_id" in names and "clip_id" not in names else ""
        raise ValueError(
            f"{manifest} is not a clip manifest: it has no {', '.join(missing)} column{kind}; {CLIP_MANIFEST_HINT}"
        )


def require_clips_beside(manifest: Path, clip_files: Iterable[Path | None]) -> None:
    """FileNotFoundError when not one clip file exists: the manifest was moved away from its dataset.

    A manifest's paths are relative to its folder; rerunning cannot help, so this is one error
    before any work instead of one per clip. A few missing files stay per-clip errors.
    """
    files = [path for path in clip_files if path is not None]
    if files and not any(path.is_file() for path in files):
        raise FileNotFoundError(
            f"none of the {len(files)} clip files of {manifest} exists (first: {files[0]}); its paths are "
            f"relative to its folder, so keep {manifest.name} in its dataset folder and give that path"
        )
