"""One default executor for every command (Ray, in-process unless --address), and a model replica per
GPU or per node on it -- never one per CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import fields

import pyarrow as pa
import pytest

from sfi_core.executors.base import plan_shards
from sfi_core.executors.ray import Pool, pool_size
from sfi_core.manifest_table import merge_parts
from sfi_core.stage import Stage

SCHEMA = pa.schema([("video_id", pa.string()), ("status", pa.string()), ("pid", pa.int64())])

DEFAULTS = """
import json
from sfi_bench.generate import ParallelConfig
from sfi_core.config import ExecutionConfig
from sfi_data import config_dataset
from sfi_data.config import RunConfig

per_step = [c.__name__ for c in (config_dataset.CaptionConfig, config_dataset.CategorizeConfig,
            config_dataset.SplitConfig, config_dataset.ExportConfig)
            if "executor" in c.__dataclass_fields__]
print(json.dumps({"execution": ExecutionConfig().executor, "run": RunConfig().executor,
                  "bench": ParallelConfig().executor, "per_step": per_step}))
"""


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "SFI_EXECUTOR"} | env
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120
    )


def test_every_command_defaults_to_ray_and_sfi_executor_changes_it():
    """The tests run with SFI_EXECUTOR=local (conftest); without it every config says ray, and no step
    keeps an executor of its own (they all take the command's ExecutionConfig)."""
    plain = python(DEFAULTS)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout) == {"execution": "ray", "run": "ray", "bench": "ray", "per_step": []}
    local = python(DEFAULTS, SFI_EXECUTOR="local")
    assert json.loads(local.stdout)["bench"] == json.loads(local.stdout)["execution"] == "local"


def test_a_bad_sfi_executor_is_one_line():
    for command in ("sfi_data.cli", "sfi_bench.cli"):
        done = python(f"from {command} import main; main(['--help'])", SFI_EXECUTOR="rya")
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "SFI_EXECUTOR='rya' is not one of local, ray" in done.stderr


class Cheap(Stage):
    """A curation-like stage: one CPU per worker."""

    name = "cheap"
    shard_size = 1

    def process_row(self, row: dict) -> list[dict]:
        time.sleep(0.2)  # long enough that every actor of the pool takes shards
        return [row | {"status": "ok", "pid": os.getpid()}]


class Replica(Cheap):
    """A stage whose workers each hold a model (the bench's generate and score stages)."""

    name = "replica"
    replica = True


@pytest.mark.parametrize(
    ("stage", "shards", "cpus", "gpus", "node_cpus", "expected"),
    [
        (Cheap(), 100, 16, 0, 16, Pool(16, 1.0, 0.0)),  # one curation worker per CPU
        (Cheap(), 3, 16, 0, 16, Pool(3, 1.0, 0.0)),  # no more workers than shards
        (Replica(), 100, 16, 0, 16, Pool(1, 16.0, 0.0)),  # no GPU: one replica with every CPU
        (Replica(), 100, 32, 0, 16, Pool(2, 16.0, 0.0)),  # two nodes: one replica each
        (Replica(), 100, 64, 8, 64, Pool(8, 1.0, 1.0)),  # GPUs: one replica per GPU
    ],
)
def test_a_pool_is_sized_by_its_stage_and_a_replica_by_the_machine(
    stage, shards, cpus, gpus, node_cpus, expected
):
    assert pool_size(stage, shards, cpus, gpus, node_cpus) == expected


def test_asked_for_gpus_a_stage_gets_them_and_a_scorer_falls_back_to_cpus():
    two = Replica()
    two.num_gpus = 2.0  # --gpus-per-worker 2
    assert pool_size(two, 100, 64, 8, 64) == Pool(4, 1.0, 2.0)
    half = Cheap()
    half.num_gpus = 0.5  # a curation scorer's --gpus-per-worker 0.5
    assert pool_size(half, 100, 64, 8, 64) == Pool(16, 1.0, 0.5)
    assert pool_size(half, 100, 16, 0, 16) == Pool(16, 1.0, 0.0)  # no GPUs: a scorer per CPU


@pytest.mark.slow  # a Ray start: seconds on two cores
def test_on_ray_a_replica_stage_starts_one_worker_and_a_cheap_stage_one_per_cpu(tmp_path):
    import ray
    import ray.cloudpickle

    from sfi_core.executors.ray import RayExecutor

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this module
    executor = RayExecutor(num_cpus=2)
    rows = [{"video_id": f"v{i}"} for i in range(6)]
    try:
        pids = {}
        for stage in (Cheap(), Replica()):
            parts = tmp_path / stage.name
            shards, _ = plan_shards(rows, "video_id", parts, shard_size=1)
            list(executor.map_shards(stage, shards, SCHEMA))
            pids[stage.name] = {r["pid"] for r in merge_parts(parts, SCHEMA, "video_id")}
    finally:
        executor.close()
    assert len(pids["cheap"]) == 2 and len(pids["replica"]) == 1
    assert not ray.is_initialized()


def test_the_bench_stages_are_replicas_unless_workers_are_given(tmp_path):
    from sfi_bench.generate import BenchRunConfig, GenerateStage, ParallelConfig
    from sfi_bench.scoring import ScoreStage

    config = BenchRunConfig(model="linear", clips=tmp_path / "c.parquet", out=tmp_path / "r")
    assert GenerateStage(config).replica and ScoreStage(tmp_path, {}, "cpu", None).replica
    pool = BenchRunConfig(
        model="linear", clips=tmp_path / "c.parquet", out=tmp_path / "r", parallel=ParallelConfig(num_cpus=4)
    )
    assert not GenerateStage(pool).replica and not ScoreStage(tmp_path, {}, "cpu", None, workers=4).replica
    assert {f.name for f in fields(ParallelConfig)} >= {
        "executor",
        "address",
        "num_cpus",
        "num_gpus",
        "shard",
    }
