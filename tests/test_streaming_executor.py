"""The streaming executor: a SplitChain's halves overlap on Ray and write what the local executor writes."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pytest

from sfi_core.executors.base import plan_shards
from sfi_core.executors.local import LocalExecutor
from sfi_core.executors.streaming import SHARDS_IN_FLIGHT, SplitChain, StreamingExecutor, plan_stream
from sfi_core.manifest_table import merge_parts
from sfi_core.stage import Stage

SCHEMA = pa.schema([("video_id", pa.string()), ("status", pa.string()), ("checksum", pa.int64())])


class MakePayload(Stage):
    """CPU half: a payload per row, as the fetch stage attaches decoded frames."""

    name = "payload"

    def process_row(self, row: dict) -> list[dict]:
        seed = int(row["video_id"][1:])
        payload = np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8)
        return [row | {"_payload": payload, "status": "ok"}]


class SumPayload(Stage):
    """Finishing half: consumes the payload in one batch per shard, as the scorer does."""

    name = "sum"
    batch_sleep_s = 0.0

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        rows = list(rows)
        time.sleep(self.batch_sleep_s)
        for row in rows:
            payload = row.pop("_payload")
            yield row | {"checksum": int(payload.astype(np.int64).sum())}


def split_chain(streamed: bool) -> SplitChain:
    return SplitChain([MakePayload(), SumPayload()], split=1, streamed=streamed)


@pytest.fixture(scope="module")
def ray_two_cpus():
    import ray
    import ray.cloudpickle

    # Ray workers cannot import this test module by name: send its stages by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def run_all(executor, stage, rows, parts):
    shards, _ = plan_shards(rows, "video_id", parts, shard_size=3)
    results = list(executor.map_shards(stage, shards, SCHEMA))
    return results, merge_parts(parts, SCHEMA, "video_id", [r["video_id"] for r in rows])


@pytest.mark.slow  # Ray start-up: about 7 s on 2 busy cores
def test_streamed_split_chain_writes_what_local_writes(tmp_path, ray_two_cpus):
    rows = [{"video_id": f"v{i}"} for i in range(11)]
    _, local = run_all(LocalExecutor(), split_chain(streamed=False), rows, tmp_path / "local")
    executor = StreamingExecutor()
    results, streamed = run_all(executor, split_chain(streamed=True), rows, tmp_path / "streamed")
    executor.close()
    assert streamed == local
    assert len(local) == 11 and all(r["checksum"] > 0 for r in local)
    assert sorted(r.inputs for r in results) == [2, 3, 3, 3]  # a result per shard, with its input count
    assert len(list((tmp_path / "streamed").glob("part-*.parquet"))) == 4  # the scorer wrote each part


def test_split_chain_back_to_back_is_the_chain():
    stage = split_chain(streamed=True)
    prepare, finish = stage.halves()
    rows = [{"video_id": "v1"}, {"video_id": "v2"}]
    assert [r["checksum"] for r in finish.run(prepare.run(rows))] == [r["checksum"] for r in stage.run(rows)]
    with pytest.raises(ValueError, match="empty half"):
        SplitChain([MakePayload(), SumPayload()], split=2)


def test_plan_stream_gives_gpus_to_scorers_and_the_rest_of_the_cpus_to_preparers():
    eight_gpus = plan_stream(cluster_cpus=64, cluster_gpus=8, stage_gpus=1.0, shards=1000)
    assert (eight_gpus.scorers, eight_gpus.scorer_gpus, eight_gpus.preparers) == (8, 1.0, 56)
    assert eight_gpus.prepared_limit == 56 + SHARDS_IN_FLIGHT * 8
    shared = plan_stream(cluster_cpus=16, cluster_gpus=2, stage_gpus=0.5, shards=1000)
    assert (shared.scorers, shared.preparers) == (4, 12)
    cpu_only = plan_stream(cluster_cpus=2, cluster_gpus=0, stage_gpus=1.0, shards=1000)
    assert (cpu_only.scorers, cpu_only.scorer_gpus, cpu_only.preparers) == (1, 0.0, 1)
    few = plan_stream(cluster_cpus=64, cluster_gpus=8, stage_gpus=1.0, shards=3)
    assert (few.scorers, few.preparers) == (3, 3)
