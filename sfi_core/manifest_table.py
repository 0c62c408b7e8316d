"""The merge of a stage's part files kept in Arrow: `merge_parts`' rows as one table, with no row dicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfi_core.manifest import _parts_newest_first, atomic_path

# Parts are gathered this many at a time into one table: each table read from a file keeps its own
# copy of the file's schema (36 fields with their descriptions), about 80 KB, which for 1,250 parts
# came to more than the rows themselves.
PARTS_PER_TABLE = 64
# Rows per batch (and row group) of a merged manifest written by write_merged_parts.
BATCH_ROWS = 4096


def _pool() -> pa.MemoryPool:
    # The system allocator: pyarrow's default (mimalloc) kept the freed steps of gathering 1,250
    # small parts, 14 MiB more RSS for 10,000 rows (as in sfi_data.discover_table).
    return pa.system_memory_pool()


def read_part(part: Path, schema: pa.Schema, columns: list[str] | None = None) -> pa.Table:
    """One part file as a table of `schema` (a part of an older schema gets its missing columns as nulls);
    with `columns`, of those columns only."""
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    # ParquetFile.read, not read_table: read_table's dataset machinery costs far more memory per file.
    table = pq.ParquetFile(part).read(columns=columns)
    if not table.schema.equals(schema, check_metadata=False):
        return pq.read_table(part, schema=schema, columns=columns)
    return pa.Table.from_arrays(table.columns, schema=schema)


def _read_parts(
    parts: list[Path], schema: pa.Schema, columns: list[str] | None = None
) -> tuple[pa.Table, list[int]]:
    """All `parts` as one table (of `columns`, if given), and the number of rows each part gave."""
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    tables, pending, sizes = [], [], []
    for part in parts:
        pending.append(read_part(part, schema, columns))
        sizes.append(pending[-1].num_rows)
        if len(pending) == PARTS_PER_TABLE:
            tables.append(pa.concat_tables(pending).combine_chunks(_pool()))
            pending = []
    tables.append(pa.concat_tables(pending).combine_chunks(_pool()) if pending else schema.empty_table())
    return pa.concat_tables(tables), sizes


def _selection(keys: pa.ChunkedArray, sizes: list[int], wanted) -> np.ndarray:
    """Positions, in the parts read newest first, of the rows `merge_parts` keeps, in its order."""
    rank = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    # Plain numpy over dictionary codes, not Acero's group-by and join: those start thread pools and
    # keep tens of MiB for the life of the process.
    encoded = pc.dictionary_encode(keys.combine_chunks(_pool()), memory_pool=_pool())
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    newest = np.full(len(encoded.dictionary), np.iinfo(np.int64).max)
    np.minimum.at(newest, codes, rank)  # each key's newest part is its lowest rank
    kept = np.flatnonzero(rank == newest[codes])
    kept = kept[np.argsort(codes[kept], kind="stable")]  # grouped by key, written order within
    counts = np.bincount(codes[kept], minlength=len(encoded.dictionary))
    starts = np.cumsum(counts) - counts
    if wanted is None:
        order = pc.sort_indices(encoded.dictionary).to_numpy()
    else:
        # Every position of `wanted` (a key named twice gets its rows twice, as merge_parts does).
        order = pc.drop_null(pc.index_in(wanted, value_set=encoded.dictionary)).to_numpy().astype(np.int64)
    lengths = counts[order]
    offsets = np.cumsum(lengths) - lengths
    within = np.arange(lengths.sum()) - np.repeat(offsets, lengths)
    return kept[np.repeat(starts[order], lengths) + within]


def merge_parts_table(
    parts_dir: Path,
    schema: pa.Schema,
    key: str,
    wanted: pa.Array | pa.ChunkedArray | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """`merge_parts(...)` as a table of exactly `schema`: the same rows in the same order.

    The newest part holding a key wins; keys come in `wanted` order (else sorted), the rows of one
    key in the order the stage wrote them. `columns` (the key among them) reads only those.
    """
    if columns is not None:
        columns = list(dict.fromkeys([key, *columns]))
        schema = pa.schema([schema.field(name) for name in columns])
    parts, sizes = _read_parts(_parts_newest_first(parts_dir), schema, columns)
    if not sizes:
        return schema.empty_table()
    rows = pa.array(_selection(parts.column(key), sizes, wanted))
    merged = pc.take(parts, rows, memory_pool=_pool()).combine_chunks(_pool())
    return pa.Table.from_arrays(merged.columns, schema=schema)


def _read_keys(parts: list[Path], key: str, key_type: pa.DataType) -> tuple[pa.ChunkedArray, list[int]]:
    """The key column of every part (nothing else is read), and each part's row count."""
    chunks, pending, sizes = [], [], []
    for part in parts:
        pending.append(pq.ParquetFile(part).read(columns=[key]).column(key).combine_chunks().cast(key_type))
        sizes.append(len(pending[-1]))
        if len(pending) == PARTS_PER_TABLE:
            chunks.append(pa.concat_arrays(pending))
            pending = []
    if pending:
        chunks.append(pa.concat_arrays(pending))
    return pa.chunked_array(chunks, key_type), sizes


def write_merged_parts(
    parts_dir: Path,
    schema: pa.Schema,
    key: str,
    path: Path,
    wanted: pa.Array | pa.ChunkedArray | None = None,
    each: Callable[[pa.Table], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    transform: Callable[[pa.Table], pa.Table] | None = None,
) -> int:
    """Write `merge_parts_table(...)` to `path` (atomically) without holding it: `batch_rows` at a time.

    The key columns decide which rows are kept (as in merge_parts_table); then each batch of the result
    reads only the parts it takes rows from, so memory stays within a batch and its parts whatever the
    number of rows. `transform` maps each batch before it is written (rows must stay independent of each
    other); `each` sees every batch as written (to count it). Returns the number of rows written.
    """
    parts = _parts_newest_first(parts_dir)
    keys, sizes = _read_keys(parts, key, schema.field(key).type)
    selected = _selection(keys, sizes, wanted) if sizes else np.zeros(0, np.int64)
    del keys
    ends = np.cumsum(sizes, dtype=np.int64)
    part_of = np.searchsorted(ends, selected, side="right")
    row_in_part = selected - (ends - np.asarray(sizes, np.int64))[part_of]
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        if not len(selected):
            writer.write_table(schema.empty_table())
        for start in range(0, len(selected), batch_rows):
            batch_parts = part_of[start : start + batch_rows]
            needed, slot = np.unique(batch_parts, return_inverse=True)
            read, read_sizes = _read_parts([parts[i] for i in needed], schema)
            first_row = np.cumsum([0] + read_sizes[:-1], dtype=np.int64)
            rows = pa.array(first_row[slot] + row_in_part[start : start + batch_rows])
            batch = pc.take(read, rows, memory_pool=_pool()).combine_chunks(_pool())
            batch = pa.Table.from_arrays(batch.columns, schema=schema)
            del read
            if transform is not None:
                batch = transform(batch)
            writer.write_table(batch)
            if each is not None:
                each(batch)
    return len(selected)
