"""The one merge of a stage's part files, in Arrow: the newest part holding a key wins (newest by the
generation in its name, sfi_core.manifest.parts_newest_first), as rows (`merge_parts`), as a table
(`merge_parts_table`), written to a manifest batch by batch (`PartsMerge.write`), or as the keys
finished without an error (`finished_keys`, what a rerun skips)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfi_core.constants import STATUS_ERROR
from sfi_core.manifest import atomic_path, parts_newest_first

# Parts are gathered this many at a time into one table: each table read from a file keeps its own
# copy of the file's schema (36 fields with their descriptions), about 80 KB, which for 1,250 parts
# came to more than the rows themselves.
PARTS_PER_TABLE = 64
# Rows per batch (and row group) of a merged manifest written by PartsMerge.write.
BATCH_ROWS = 4096


def _pool() -> pa.MemoryPool:
    # The system allocator: pyarrow's default (mimalloc) kept the freed steps of gathering 1,250
    # small parts, 14 MiB more RSS for 10,000 rows (as in sfi_data.discover_table).
    return pa.system_memory_pool()


def read_part(part: Path, schema: pa.Schema, columns: list[str]) -> pa.Table:
    """`columns` of one part file, typed as in `schema` (a part of an older schema gets its missing
    columns as nulls)."""
    schema = pa.schema([schema.field(name) for name in columns])
    # ParquetFile.read, not read_table: read_table's dataset machinery costs far more memory per file.
    table = pq.ParquetFile(part).read(columns=columns)
    if not table.schema.equals(schema, check_metadata=False):
        return pq.read_table(part, schema=schema, columns=columns)
    return pa.Table.from_arrays(table.columns, schema=schema)


def _read_parts(parts: list[Path], schema: pa.Schema, columns: list[str]) -> tuple[pa.Table, list[int]]:
    """`columns` of all `parts` as one table, and the number of rows each part gave."""
    tables, pending, sizes = [], [], []
    for part in parts:
        pending.append(read_part(part, schema, columns))
        sizes.append(pending[-1].num_rows)
        if len(pending) == PARTS_PER_TABLE:
            tables.append(pa.concat_tables(pending).combine_chunks(_pool()))
            pending = []
    if pending or not tables:
        tables.append(
            pa.concat_tables(pending).combine_chunks(_pool()) if pending else _empty(schema, columns)
        )
    return pa.concat_tables(tables), sizes


def _empty(schema: pa.Schema, columns: list[str]) -> pa.Table:
    return pa.schema([schema.field(name) for name in columns]).empty_table()


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


class PartsMerge:
    """Which rows of a stage's part files `merge_parts` keeps, decided once from a few of their columns.

    The newest part holding a key wins; keys come in `wanted` order (else sorted), the rows of one key
    in the order the stage wrote them. `kept` holds `columns` (and the key) of those rows in that
    order; `write` writes every column of them to a manifest batch by batch, reading only the parts
    each batch takes rows from, so memory stays within a batch whatever the number of rows.
    """

    def __init__(
        self,
        parts_dir: Path,
        schema: pa.Schema,
        key: str,
        wanted: pa.Array | pa.ChunkedArray | None = None,
        columns: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.schema = schema
        self.parts = parts_newest_first(parts_dir)
        read, sizes = _read_parts(self.parts, schema, [*columns] if key in columns else [key, *columns])
        selected = _selection(read.column(key), sizes, wanted) if sizes else np.zeros(0, np.int64)
        self.kept = pc.take(read, pa.array(selected), memory_pool=_pool()).combine_chunks(_pool())
        ends = np.cumsum(sizes, dtype=np.int64)
        self.part_of = np.searchsorted(ends, selected, side="right")  # each kept row's part...
        self.row_in_part = selected - (ends - np.asarray(sizes, np.int64))[self.part_of]  # ...and row there

    def __len__(self) -> int:
        return len(self.part_of)

    def write(
        self,
        path: Path,
        transform: Callable[[pa.Table], pa.Table] | None = None,
        each: Callable[[pa.Table], None] | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        """Write the kept rows, every column, to `path` (atomically), `batch_rows` at a time.

        `transform` maps each batch before it is written (rows must stay independent of each other);
        `each` sees every batch as written (to count it).
        """
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, self.schema) as writer:
            if not len(self):
                writer.write_table(self.schema.empty_table())
            for start in range(0, len(self), batch_rows):
                needed, slot = np.unique(self.part_of[start : start + batch_rows], return_inverse=True)
                read, sizes = _read_parts([self.parts[i] for i in needed], self.schema, self.schema.names)
                first_row = np.cumsum([0] + sizes[:-1], dtype=np.int64)
                rows = pa.array(first_row[slot] + self.row_in_part[start : start + batch_rows])
                batch = pc.take(read, rows, memory_pool=_pool()).combine_chunks(_pool())
                del read
                batch = pa.Table.from_arrays(batch.columns, schema=self.schema)
                if transform is not None:
                    batch = transform(batch)
                writer.write_table(batch)
                if each is not None:
                    each(batch)


def merge_parts(parts_dir: Path, schema: pa.Schema, key: str, wanted: list[str] | None = None) -> list[dict]:
    """Every row of the newest part holding each input `key` (a stage may write several rows per key).

    Keys come in `wanted` order if given (else sorted), rows of one key in the order the stage wrote them.
    """
    wanted_keys = None if wanted is None else pa.array(list(wanted), pa.string())
    return merge_parts_table(parts_dir, schema, key, wanted_keys).to_pylist()


def finished_keys(parts_dir: Path, key: str) -> set[str]:
    """Input keys whose newest rows hold no `error` row: those are kept; errors are retried."""
    parts = parts_newest_first(parts_dir)
    tables, sizes = [], []
    for part in parts:
        names = pq.read_schema(part).names
        table = pq.ParquetFile(part).read(columns=[key, "status"] if "status" in names else [key])
        status = table.column("status") if "status" in names else pa.nulls(table.num_rows, pa.string())
        tables.append(
            pa.table({key: table.column(key).cast(pa.string()), "status": status.cast(pa.string())})
        )
        sizes.append(table.num_rows)
    if not tables:
        return set()
    read = pa.concat_tables(tables)
    kept = pc.take(read, pa.array(_selection(read.column(key), sizes, None)))
    failed = pc.fill_null(pc.equal(kept.column("status"), STATUS_ERROR), False)
    return set(kept.column(key).to_pylist()) - set(kept.filter(failed).column(key).to_pylist())


def merge_parts_table(
    parts_dir: Path, schema: pa.Schema, key: str, wanted: pa.Array | pa.ChunkedArray | None = None
) -> pa.Table:
    """`merge_parts(...)` as a table of exactly `schema`: the same rows in the same order (see PartsMerge)."""
    kept = PartsMerge(parts_dir, schema, key, wanted, columns=schema.names).kept
    return pa.Table.from_arrays(kept.columns, schema=schema)
