"""Serial execution in this process: the reference behaviour, and the easiest to debug."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from sfi_core.executors.base import Executor, Shard, ShardResult, run_shard
from sfi_core.stage import Stage


class LocalExecutor(Executor):
    name = "local"

    def map_shards(self, stage: Stage, shards: list[Shard], schema: pa.Schema) -> Iterator[ShardResult]:
        if not shards:
            return
        stage.setup()
        for shard in shards:
            yield run_shard(stage, shard, schema)
