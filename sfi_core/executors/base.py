"""What every executor shares: shards, the per-shard work and the resume bookkeeping."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from sfi_core.manifest import next_generation, shard_name, write_rows
from sfi_core.manifest_table import finished_keys
from sfi_core.memory import release_freed_memory
from sfi_core.stage import Stage


@dataclass
class Shard:
    rows: list[dict]
    part_path: Path


@dataclass
class ShardResult:
    inputs: int
    outputs: int
    statuses: Counter = field(default_factory=Counter)


def run_shard(stage: Stage, shard: Shard, schema: pa.Schema) -> ShardResult:
    """Run `stage` over one shard and write its rows atomically: a shard is either whole or absent."""
    out = list(stage.run(shard.rows))
    write_rows(out, schema, shard.part_path)
    result = ShardResult(len(shard.rows), len(out), Counter(row.get("status") or "ok" for row in out))
    del out
    release_freed_memory()  # a long-lived worker's heap otherwise grows with the shards it has run
    return result


def limit_threads(count: int) -> None:
    """Keep this process's codec, OpenCV and torch thread pools within `count` cores."""
    import cv2

    from sfi_core.video import set_codec_threads

    set_codec_threads(count)
    cv2.setNumThreads(count)
    torch = sys.modules.get("torch")  # only if a stage loaded it: importing torch costs seconds
    if torch is not None:
        torch.set_num_threads(count)


def plan_shards(
    rows: list[dict], key: str, parts_dir: Path, shard_size: int, redo: set[str] | None = None
) -> tuple[list[Shard], int]:
    """Split the rows whose key has no finished output yet (or is in `redo`) into shards; return them
    and the skip count."""
    done = finished_keys(parts_dir, key) - (redo or set())
    todo = [row for row in rows if row[key] not in done]
    generation = next_generation(parts_dir)
    shards = []
    for start in range(0, len(todo), shard_size):
        chunk = todo[start : start + shard_size]
        shards.append(Shard(chunk, parts_dir / shard_name([row[key] for row in chunk], generation)))
    return shards, len(rows) - len(todo)


class Executor:
    name = "base"

    def map_shards(self, stage: Stage, shards: list[Shard], schema: pa.Schema) -> Iterator[ShardResult]:
        raise NotImplementedError

    def close(self) -> None:
        pass
