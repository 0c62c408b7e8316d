"""Part files merged in Arrow: `merge_parts`' rows as one table, so a 10,000-row manifest is no list of dicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sfi_core.manifest import _parts_newest_first

# Bookkeeping columns, dropped before the table is returned.
_RANK, _ROW, _POSITION = "__part_rank", "__row_in_part", "__position"


def _ranked(part: Path, rank: int, schema: pa.Schema) -> pa.Table:
    table = pq.read_table(part, schema=schema)
    count = table.num_rows
    table = table.append_column(_RANK, pa.array(np.full(count, rank, np.int64)))
    return table.append_column(_ROW, pa.array(np.arange(count, dtype=np.int64)))


def merge_parts_table(
    parts_dir: Path, schema: pa.Schema, key: str, wanted: list[str] | None = None
) -> pa.Table:
    """What `merge_parts` returns, as a table of `schema`: each key's rows from the newest part holding it,

    keys in `wanted` order if given (else sorted), rows of one key in the order the stage wrote them.
    """
    parts = _parts_newest_first(Path(parts_dir))
    if not parts:
        return schema.empty_table()
    every = pa.concat_tables([_ranked(part, rank, schema) for rank, part in enumerate(parts)])
    newest = every.group_by(key, use_threads=False).aggregate([(_RANK, "min")])
    every = every.join(newest, key, join_type="inner", use_threads=False)
    every = every.filter(pc.equal(every.column(_RANK), every.column(f"{_RANK}_min")))
    if wanted is None:
        every = every.sort_by([(key, "ascending"), (_ROW, "ascending")])
    else:
        positions = pa.table(
            {key: pa.array(wanted, schema.field(key).type), _POSITION: np.arange(len(wanted))}
        )
        every = every.join(positions, key, join_type="inner", use_threads=False).sort_by(
            [(_POSITION, "ascending"), (_ROW, "ascending")]
        )
    return every.select(schema.names)
