"""Streaming on Ray: CPU tasks prepare shards while scorer actors (a GPU each, or a CPU) finish and write them.

A `SplitChain` is a Chain whose first stages only read and decode (CPU work) and whose last stages run a
model in batches. Run back to back it is the plain Chain (the local executor, and Ray for a weight-free
run). Marked `streamed`, the streaming executor runs its two halves as overlapping steps: CPU tasks
prepare shards anywhere in the cluster, and a fixed set of scorer actors (models loaded once) take each
prepared shard as soon as it is ready, so the accelerator never waits for a decode. Prepared shards are
bounded (each scorer holds at most `SHARDS_IN_FLIGHT`, plus what the CPUs are preparing), so memory stays
flat however long the input is. The scorer writes the shard's part file: resume and settings stay per shard.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterator

import pyarrow as pa

from sfi_core.executors.base import Shard, ShardResult, limit_threads, run_shard
from sfi_core.executors.ray import SHARDS_IN_FLIGHT, RayExecutor
from sfi_core.stage import Chain, Stage

# CPUs a scorer actor keeps: it converts and copies batches for its GPU (or, with no GPU, scores on it).
SCORER_CPUS = 1.0


class SplitChain(Chain):
    """Stages back to back, of which the first `split` prepare rows on CPUs and the rest finish them.

    `streamed` asks a streaming executor to overlap the halves; it changes only where work runs, never
    the rows, so it is left out of the settings (as the device and batch size are).
    """

    def __init__(
        self, stages: list[Stage], split: int, key: str = "video_id", streamed: bool = False
    ) -> None:
        if not 0 < split < len(stages):
            raise ValueError(f"split {split} leaves an empty half of {len(stages)} stages")
        super().__init__(stages, key)
        self.split = split
        self.streamed = streamed

    def halves(self) -> tuple[Chain, Chain]:
        prepare, finish = (
            Chain(self.stages[: self.split], self.key),
            Chain(self.stages[self.split :], self.key),
        )
        prepare.num_gpus, finish.num_gpus = 0.0, self.num_gpus  # only the finishing half uses a GPU
        return prepare, finish


def _prepare(stage: Stage, rows: list[dict]) -> list[dict]:
    """One shard's CPU half, in a Ray task: setup runs per shard, so the CPU half must keep it cheap
    (probe, meta filter and fetch have none); models belong in the finishing half."""
    limit_threads(max(1, math.ceil(stage.num_cpus)))  # the one core Ray gave this task, not every core
    stage.setup()
    return list(stage.run(rows))


class _Scorer:
    """Holds the finishing half with its models loaded; scores prepared shards and writes their parts."""

    def __init__(self, stage: Stage, threads: int) -> None:
        self.stage = stage
        self.stage.setup()
        limit_threads(threads)

    def run(self, prepared: list[dict], inputs: int, part: Shard, schema: pa.Schema) -> ShardResult:
        result = run_shard(self.stage, dataclasses.replace(part, rows=prepared), schema)
        return dataclasses.replace(result, inputs=inputs)  # the shard's inputs, not the prepared rows


@dataclasses.dataclass
class StreamPlan:
    """How many of each worker a cluster gets: scorers by GPUs (or one), preparers on the CPUs left."""

    scorers: int
    scorer_gpus: float
    preparers: int

    @property
    def prepared_limit(self) -> int:
        """Shards being prepared or waiting for a scorer: enough to keep every scorer's queue full."""
        return self.preparers + SHARDS_IN_FLIGHT * self.scorers


def plan_stream(cluster_cpus: int, cluster_gpus: float, stage_gpus: float, shards: int) -> StreamPlan:
    if stage_gpus > 0 and cluster_gpus > 0:
        scorers, gpus = max(1, int(cluster_gpus / stage_gpus)), stage_gpus
    else:
        scorers, gpus = 1, 0.0
    scorers = min(scorers, shards)
    preparers = max(1, cluster_cpus - int(scorers * SCORER_CPUS))
    return StreamPlan(scorers, gpus, min(preparers, shards))


class StreamingExecutor(RayExecutor):
    """Ray, with a SplitChain marked `streamed` run as two overlapping steps; any other stage as RayExecutor."""

    name = "ray"

    def map_shards(self, stage: Stage, shards: list[Shard], schema: pa.Schema) -> Iterator[ShardResult]:
        # A stage that asks for a GPU on a cluster without one runs as before: a scorer per CPU beats
        # one CPU scorer fed by the rest.
        gpu_missing = stage.num_gpus > 0 and self._num_gpus == 0
        if not (isinstance(stage, SplitChain) and stage.streamed) or gpu_missing:
            yield from super().map_shards(stage, shards, schema)
            return
        if not shards:
            return
        yield from self._stream(stage, shards, schema)

    def _stream(self, stage: SplitChain, shards: list[Shard], schema: pa.Schema) -> Iterator[ShardResult]:
        ray = self._ray
        prepare, finish = stage.halves()
        plan = plan_stream(self._num_cpus, self._num_gpus, stage.num_gpus, len(shards))
        prepare_task = ray.remote(num_cpus=prepare.num_cpus)(_prepare)
        scorer_cls = ray.remote(num_cpus=SCORER_CPUS, num_gpus=plan.scorer_gpus)(_Scorer)
        scorers = [scorer_cls.remote(finish, max(1, int(SCORER_CPUS))) for _ in range(plan.scorers)]
        prepare_ref, schema_ref = ray.put(prepare), ray.put(schema)
        todo = iter(shards)
        preparing: dict = {}  # prepared-rows ref -> its shard
        ready: deque = deque()  # (prepared-rows ref, shard), prepared and waiting for a scorer
        scoring: dict = {}  # result ref -> the scorer computing it
        load = {id(scorer): 0 for scorer in scorers}

        def top_up() -> None:
            while len(preparing) + len(ready) < plan.prepared_limit:
                shard = next(todo, None)
                if shard is None:
                    return
                preparing[prepare_task.remote(prepare_ref, shard.rows)] = shard

        def hand_out() -> None:
            while ready:
                scorer = min(scorers, key=lambda s: load[id(s)])
                if load[id(scorer)] >= SHARDS_IN_FLIGHT:
                    return
                ref, shard = ready.popleft()
                part = Shard([], shard.part_path)  # where to write; the rows come prepared, through `ref`
                scoring[scorer.run.remote(ref, len(shard.rows), part, schema_ref)] = scorer
                load[id(scorer)] += 1

        try:
            top_up()
            while preparing or ready or scoring:
                hand_out()
                (done,), _ = ray.wait([*preparing, *scoring], num_returns=1)
                if done in preparing:
                    # Only a finished preparation goes to a scorer: an actor runs its calls in order, so an
                    # unfinished one would hold up shards prepared after it.
                    ready.append((done, preparing.pop(done)))
                else:
                    load[id(scoring.pop(done))] -= 1
                    yield ray.get(done)
                top_up()
        finally:
            for ref in preparing:
                ray.cancel(ref, force=True)
            for scorer in scorers:
                ray.kill(scorer)
