"""Discover into Arrow: the rows of `discover`, built a chunk at a time, so a 1M-line list never lives as dicts."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfi_data.discover import LIST_EXTENSIONS, expand_inputs, video_id_for

CHUNK_ROWS = 65_536
INPUT_SCHEMA = pa.schema([("video_id", pa.string()), ("source", pa.string()), ("path", pa.string())])
# The columns a Parquet list may name its paths in, by preference (as sfi_data.discover reads them).
PATH_COLUMNS = ("path", "source", "video_path", "url")


def _anchored(entry: str, base: Path) -> str:
    return entry if os.path.isabs(entry) else str(base / entry)


def list_entries(path: Path) -> Iterator[str]:
    """The paths a list file names, streamed (a Parquet list a row group at a time)."""
    if path.suffix == ".parquet":
        names = pq.read_schema(path).names
        column = next((c for c in PATH_COLUMNS if c in names), None)
        if column is None:
            raise ValueError(f"{path}: a list in Parquet needs a 'path' column; found {names}")
        for batch in pq.ParquetFile(path).iter_batches(columns=[column]):
            yield from (_anchored(entry, path.parent) for entry in batch.column(0).to_pylist())
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                yield _anchored(entry, path.parent)


def input_paths(inputs: Iterable[str], list_files: Iterable[str] = ()) -> Iterator[str]:
    """Every input in `expand_inputs` order, duplicates included; list files streamed, not read whole."""
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            yield from list_entries(path)
        else:
            yield from expand_inputs([item])
    for list_file in list_files:
        yield from list_entries(Path(list_file))


def _chunk_table(items: list[str], root: str, first_index: int) -> pa.Table:
    absolute = [os.path.abspath(item) for item in items]
    columns = {
        "video_id": [video_id_for(item) for item in items],
        "source": items,
        "path": [os.path.relpath(path, root) for path in absolute],
        "_absolute": absolute,
        "_index": pa.array(range(first_index, first_index + len(items)), pa.int64()),
    }
    return pa.table(columns)


def discover_table(inputs: Iterable[str], root: Path, list_files: Iterable[str] = ()) -> pa.Table:
    """`discover(inputs, root, list_files)` as an Arrow table (INPUT_SCHEMA): same rows, same order."""
    root_abs = os.path.abspath(root)
    paths = input_paths(inputs, list_files)
    chunks, start = [], 0
    while items := list(islice(paths, CHUNK_ROWS)):
        chunks.append(_chunk_table(items, root_abs, start))
        start += len(items)
    if not chunks:
        return INPUT_SCHEMA.empty_table()
    table = pa.concat_tables(chunks)
    # Duplicates (the same absolute path named twice) keep their first occurrence, as `discover` does.
    first = table.group_by("_absolute", use_threads=False).aggregate([("_index", "min")])
    keep = pc.sort_indices(first.column("_index_min"))
    table = table.take(pc.take(first.column("_index_min"), keep))
    return table.select(INPUT_SCHEMA.names).cast(INPUT_SCHEMA)
