"""Discover: turn folders, globs, files and list files into input rows with deterministic video ids."""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

VIDEO_EXTENSIONS = {
    ".mp4",
    ".mkv",
    ".mov",
    ".avi",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".flv",
    ".wmv",
    ".3gp",
}
LIST_EXTENSIONS = {".txt", ".lst", ".parquet"}


def video_id_for(path: str | Path) -> str:
    """Readable and deterministic: a slug of the file stem plus a hash of its absolute path."""
    absolute = os.path.abspath(os.fspath(path))
    # Path(absolute).stem's rule without building a Path: pathlib interns every path part for the life
    # of the process, which for a million listed inputs is a million names never freed.
    name = os.path.basename(absolute)
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:40] or "video"
    digest = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{slug}-{digest}"


def _read_list(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        column = next((c for c in ("path", "source", "video_path", "url") if c in table.column_names), None)
        if column is None:
            raise ValueError(f"{path}: a list in Parquet needs a 'path' column; found {table.column_names}")
        base = path.parent
        return [str(p) if os.path.isabs(p) else str(base / p) for p in table.column(column).to_pylist()]
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [e if os.path.isabs(e) else str(path.parent / e) for e in entries]


def expand_inputs(inputs: Iterable[str], list_files: Iterable[str] = ()) -> list[str]:
    """Every input path, in a stable order, without duplicates. Missing paths are kept (they get a row)."""
    found: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                        found.append(os.path.join(root, name))
        elif any(ch in item for ch in "*?[") and not path.exists():
            found.extend(sorted(glob.glob(item, recursive=True)))
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            found.extend(_read_list(path))
        else:
            found.append(item)
    for list_file in list_files:
        found.extend(_read_list(Path(list_file)))
    seen: set[str] = set()
    unique = []
    for item in found:
        key = os.path.abspath(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def discover(inputs: Iterable[str], root: Path, list_files: Iterable[str] = ()) -> list[dict]:
    """Input rows: video_id, source (as named), path (relative to the dataset root `root`)."""
    rows = []
    for item in expand_inputs(inputs, list_files):
        rows.append(
            {
                "video_id": video_id_for(item),
                "source": item,
                "path": os.path.relpath(os.path.abspath(item), os.path.abspath(root)),
            }
        )
    return rows
