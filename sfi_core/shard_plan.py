"""Shards planned from an Arrow table: a million input rows stay in Arrow buffers, not Python dicts.

`plan_shards` in sfi_core.executors.base takes a list of row dicts; for a list of 1,000,000 inputs those
dicts alone cost gigabytes in the driver. `ShardPlan` keeps the unfinished inputs as one Arrow table and
builds each Shard (its few rows as dicts, its part name) only when an executor takes it, so the driver
holds one shard's rows at a time. It is a drop-in for the list: `len`, truth value and iteration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from sfi_core.executors.base import Shard
from sfi_core.manifest import next_generation, shard_name
from sfi_core.manifest_table import finished_keys


@dataclass
class ShardPlan:
    """The inputs still to do, cut into shards of `shard_size` rows in input order."""

    todo: pa.Table
    key: str
    parts_dir: Path
    shard_size: int
    skipped: int  # inputs finished in an earlier run
    generation: int = 1  # this run's, in every part name (sfi_core.manifest.shard_name)

    def __len__(self) -> int:
        return -(-self.todo.num_rows // self.shard_size)

    def __iter__(self) -> Iterator[Shard]:
        for start in range(0, self.todo.num_rows, self.shard_size):
            rows = self.todo.slice(start, self.shard_size).to_pylist()
            yield Shard(rows, self.parts_dir / shard_name([row[self.key] for row in rows], self.generation))

    @property
    def inputs(self) -> int:
        return self.todo.num_rows


def plan_table_shards(table: pa.Table, key: str, parts_dir: Path, shard_size: int) -> ShardPlan:
    """The same shards, part names and skip count as `plan_shards(table.to_pylist(), ...)`, lazily."""
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    done = finished_keys(parts_dir, key)
    todo = table
    if done:
        todo = table.filter(
            pc.invert(pc.is_in(table.column(key), value_set=pa.array(sorted(done), pa.string())))
        )
    skipped = table.num_rows - todo.num_rows
    return ShardPlan(todo, key, Path(parts_dir), shard_size, skipped, next_generation(parts_dir))
