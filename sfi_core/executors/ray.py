"""Ray execution: a pool of actors, each holding one set-up stage (models load once per worker).

With no address Ray starts an instance of its own in this process with `num_cpus` CPUs, even when
another cluster runs on the machine; with `--address` (or RAY_ADDRESS) it joins a running cluster
(`ray start --head` on the head node). Workers write their part files
themselves, so the output folder must be shared storage on a multi-node cluster.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from sfi_core.executors.base import Executor, Shard, ShardResult, limit_threads, run_shard
from sfi_core.stage import Stage

log = logging.getLogger(__name__)

SHARDS_IN_FLIGHT = 2  # per actor: the one it works on and the next


@dataclass(frozen=True)
class Pool:
    workers: int
    cpus: float  # per worker
    gpus: float  # per worker


def pool_size(stage: Stage, shards: int, cluster_cpus: float, cluster_gpus: float, node_cpus: float) -> Pool:
    """How many actors run `stage`, and what each asks of Ray.

    A stage's own num_cpus/num_gpus, as many as fit (GPUs where the cluster has them; a curation scorer
    falls back to CPUs). A model replica (`stage.replica`) asking for no GPU is sized by the machine
    instead: one per GPU where the cluster has GPUs (an actor given no GPU sees none: Ray hides them,
    and the model would run on CPU), else one per node given all of a node's CPUs -- never one 14B
    replica per CPU.
    """
    cpus, gpus = stage.num_cpus, stage.num_gpus if cluster_gpus > 0 else 0.0
    if stage.replica and not gpus:
        if cluster_gpus >= 1:
            gpus = 1.0
        else:
            cpus = max(1.0, node_cpus)
    workers = max(1, min(shards, int(cluster_cpus // max(cpus, 1e-9))))
    if gpus:
        workers = max(1, min(workers, int(cluster_gpus / gpus)))
    return Pool(workers, cpus, gpus)


class _StageWorker:
    def __init__(self, stage: Stage, cpus: float) -> None:
        self.stage = stage
        self.stage.setup()
        # Ray gives this actor `cpus` cores; codecs, OpenCV and torch would otherwise each start a
        # thread per core of the machine, and N actors would fight over every core.
        limit_threads(max(1, math.ceil(cpus)))

    def run(self, shard: Shard, schema: pa.Schema) -> ShardResult:
        return run_shard(self.stage, shard, schema)


class RayExecutor(Executor):
    name = "ray"

    def __init__(
        self, address: str | None = None, num_cpus: int | None = None, num_gpus: float | None = None
    ) -> None:
        import ray

        self._ray = ray
        address = address or os.environ.get("RAY_ADDRESS")
        # Ray that was running before (a notebook's ray.init, a benchmark) is left running by close().
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # "local": a new instance of our own. Left to itself, ray.init() joins whatever
                # cluster `ray start` last started on this machine, and then refuses num_cpus.
                ray.init(
                    address="local",
                    num_cpus=num_cpus or os.cpu_count() or 1,
                    num_gpus=num_gpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
        self._num_cpus = int(ray.cluster_resources().get("CPU", 1))
        self._num_gpus = float(ray.cluster_resources().get("GPU", 0))
        # The most CPUs one actor can get: a replica sized by the machine must fit on one node.
        nodes = [n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
        self._node_cpus = float(max(nodes, default=self._num_cpus))

    def map_shards(self, stage: Stage, shards: list[Shard], schema: pa.Schema) -> Iterator[ShardResult]:
        if not shards:
            return
        ray = self._ray
        if getattr(stage, "gpus_required", False) and self._num_gpus < stage.num_gpus:
            raise ValueError(
                f"--gpus-per-worker {stage.num_gpus:g} but the Ray cluster has {self._num_gpus:g} GPU(s); "
                "drop the option to run on CPUs, or join a cluster with GPUs (--address)"
            )
        pool = pool_size(stage, len(shards), self._num_cpus, self._num_gpus, self._node_cpus)
        actor_cls = ray.remote(num_cpus=pool.cpus, num_gpus=pool.gpus)(_StageWorker)
        actors = [actor_cls.remote(stage, pool.cpus) for _ in range(pool.workers)]
        schema_ref = ray.put(schema)
        todo = iter(shards)
        running: dict = {}  # result ref -> the actor computing it

        def submit(actor) -> None:
            shard = next(todo, None)
            if shard is not None:
                running[actor.run.remote(shard, schema_ref)] = actor

        try:
            # Each actor holds its next shard in its queue while it works on one, so it never waits
            # for the driver to hand out work (on a busy machine the driver waits for a core itself).
            for _ in range(SHARDS_IN_FLIGHT):
                for actor in actors:
                    submit(actor)
            while running:
                (ref,), _ = ray.wait(list(running), num_returns=1)
                submit(running.pop(ref))
                yield ray.get(ref)
        finally:
            for actor in actors:
                ray.kill(actor)

    def close(self) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
