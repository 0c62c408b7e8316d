"""Discover into Arrow: the rows of `discover`, built a chunk at a time, so a 1M-line list never lives as dicts."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sfi_data.discover import LIST_EXTENSIONS, expand_inputs, video_id_for

CHUNK_ROWS = 16_384
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


def input_paths(
    inputs: Iterable[str], list_files: Iterable[str] = (), skipped: Counter | None = None
) -> Iterator[str]:
    """Every input in `expand_inputs` order, duplicates included; list files streamed, not read whole."""
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            yield from list_entries(path)
        else:
            yield from expand_inputs([item], skipped=skipped)
    for list_file in list_files:
        yield from list_entries(Path(list_file))


def _chunk_table(items: list[str], root: str) -> tuple[pa.Table, np.ndarray]:
    """A chunk's rows, and a hash of each absolute path (the key `discover` drops repeats by)."""
    absolute = [os.path.abspath(item) for item in items]
    columns = [
        [video_id_for(item) for item in items],
        items,
        [os.path.relpath(path, root) for path in absolute],
    ]
    # The system allocator: pyarrow's default (mimalloc) keeps the builders' freed growth steps, and
    # a million rows' worth of them came to more than the table itself.
    pool = pa.system_memory_pool()
    arrays = [pa.array(column, pa.string(), memory_pool=pool) for column in columns]
    hashes = np.fromiter((hash(path) for path in absolute), np.int64, len(absolute))
    return pa.Table.from_arrays(arrays, schema=INPUT_SCHEMA), hashes


def _first_occurrences(table: pa.Table, hashes: np.ndarray) -> pa.Table:
    """Drop rows naming an absolute path named before: only rows whose hash repeats are compared as text."""
    ordered = np.sort(hashes)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not len(repeated):
        return table  # the usual case: no copy at all
    candidates = np.flatnonzero(np.isin(hashes, repeated))
    seen: set[str] = set()
    dropped = []
    for index, source in zip(candidates, table.column("source").take(candidates).to_pylist(), strict=True):
        absolute = os.path.abspath(source)
        if absolute in seen:
            dropped.append(index)
        seen.add(absolute)
    keep = np.ones(table.num_rows, bool)
    keep[dropped] = False
    return table.filter(pa.array(keep))


def discover_table(
    inputs: Iterable[str], root: Path, list_files: Iterable[str] = (), skipped: Counter | None = None
) -> pa.Table:
    """`discover(inputs, root, list_files)` as an Arrow table (INPUT_SCHEMA): same rows, same order.

    Files a folder scan leaves (not video) are counted in `skipped` by extension.
    """
    root_abs = os.path.abspath(root)
    paths = input_paths(inputs, list_files, skipped)
    tables, hashes = [], []
    while items := list(islice(paths, CHUNK_ROWS)):
        table, chunk_hashes = _chunk_table(items, root_abs)
        tables.append(table)
        hashes.append(chunk_hashes)
    if not tables:
        return INPUT_SCHEMA.empty_table()
    return _first_occurrences(pa.concat_tables(tables), np.concatenate(hashes))
