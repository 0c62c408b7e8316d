"""The one reader of clip manifests (clips.parquet, train.parquet, test.parquet): captions joined, paths resolved.

Both the benchmark's test set and the training dataset read clips through here, so a manifest that
has no `caption` column gets its prompts from the captions.parquet written beside it in both places.
"""

from __future__ import annotations

from pathlib import Path

from sfi_core.clip_checks import require_clip_manifest
from sfi_core.constants import STATUS_OK

CAPTIONS_FILE = "captions.parquet"
# Columns holding paths relative to the manifest's folder (the dataset root).
PATH_COLUMNS: tuple[str, ...] = ("clip_path", "first_frame_path", "last_frame_path")


def read_captions(captions_path: Path) -> dict[str, str]:
    """clip_id -> caption, successful captions only."""
    import pyarrow.parquet as pq

    table = pq.read_table(captions_path, columns=["clip_id", "status", "caption"]).to_pylist()
    return {row["clip_id"]: row["caption"] for row in table if row["status"] == STATUS_OK}


def resolve_path(root: Path, value: str | None) -> str | None:
    """A manifest path made absolute against the dataset folder; absolute paths are kept."""
    if not value:
        return None
    path = Path(value)
    return str(path if path.is_absolute() else root / path)


def read_clip_manifest(
    manifest_path: Path, captions_path: Path | None = None, resolve: bool = False
) -> list[dict]:
    """The usable clips of a manifest (status ok), each with a `caption` (None when it has none).

    A manifest without a `caption` column (clips.parquet) gets its captions from `captions_path`, or
    from captions.parquet beside it when that exists; only successful captions are joined. With
    `resolve`, the path columns become absolute paths (against the manifest's folder).
    """
    import pyarrow.parquet as pq

    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"no manifest at {manifest_path}; build one with `sfi-data cut` or `sfi-data split`"
        )
    require_clip_manifest(manifest_path)
    table = pq.read_table(manifest_path)
    rows = [row for row in table.to_pylist() if (row.get("status") or STATUS_OK) == STATUS_OK]
    if "caption" not in table.column_names:
        beside = manifest_path.parent / CAPTIONS_FILE
        if captions_path is None and beside.is_file():
            captions_path = beside
        captions = read_captions(Path(captions_path)) if captions_path is not None else {}
        rows = [row | {"caption": captions.get(row["clip_id"])} for row in rows]
    if resolve:
        root = manifest_path.parent
        rows = [row | {key: resolve_path(root, row.get(key)) for key in PATH_COLUMNS} for row in rows]
    return rows
