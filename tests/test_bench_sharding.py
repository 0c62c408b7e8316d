"""Sharded SFIBench: run and score split over array tasks (--shard I/N) or Ray workers equal one worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sfi_bench.generate import BenchRunConfig, ParallelConfig, run_model
from sfi_bench.score_run import score_run
from sfi_bench.storage import FrameStore
from sfi_bench.testset import ShardSpec, load_test_clips
from sfi_data.testing.toy_dataset import build_toy_dataset

MODELS = ("linear", "repeat")
METRICS = ["endpoint_psnr", "temporal_flickering", "dynamic_degree_dis"]
# What differs between two runs of the same clip by design: wall times.
TIMING_FIELDS = ("seconds",)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shard_data")
    build_toy_dataset(root, num_videos=2, scales=(5, 9), width=48, height=32)
    return root / "clips.parquet"


def run_and_score(clips: Path, out: Path, model: str, parallel: ParallelConfig) -> None:
    run_model(BenchRunConfig(model=model, clips=clips, out=out, device="cpu", parallel=parallel))
    score_run(out, METRICS, device="cpu", parallel=parallel)


def outputs(run_dir: Path) -> tuple[dict, dict, list[dict], list[dict]]:
    """Frames, records without timings, and both score tables of a run directory."""
    store = FrameStore(run_dir)
    records = {r.clip_id: r for r in store.records()}
    frames = {clip_id: store.read_frames(r.frames_path) for clip_id, r in records.items()}
    plain = {
        clip_id: {k: v for k, v in vars(r).items() if k not in TIMING_FIELDS}
        for clip_id, r in records.items()
    }
    summary = pq.read_table(run_dir / "scores_summary.parquet").to_pylist()
    per_clip = sorted(pq.read_table(run_dir / "scores_clips.parquet").to_pylist(), key=lambda r: r["clip_id"])
    return frames, plain, summary, per_clip


def assert_same(one: Path, many: Path) -> None:
    frames_a, records_a, summary_a, clips_a = outputs(one)
    frames_b, records_b, summary_b, clips_b = outputs(many)
    assert frames_a.keys() == frames_b.keys() and len(frames_a) == 4
    assert all(np.array_equal(frames_a[k], frames_b[k]) for k in frames_a)
    assert records_a == records_b
    # Per-group results are merged from per-clip states in manifest order: the same floats, not close ones.
    assert summary_a == summary_b and clips_a == clips_b
    assert any(row["value"] is not None for row in summary_a)


def test_shard_spec_takes_every_nth_clip_and_rejects_nonsense(clips: Path):
    every = load_test_clips(clips)
    halves = [ShardSpec.parse(f"{i}/2").select(every) for i in range(2)]
    assert sorted(c.clip_id for half in halves for c in half) == sorted(c.clip_id for c in every)
    assert {c.num_frames for c in halves[0]} == {5, 9}  # each shard sees every scale
    for bad in ("2/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="--shard"):
            ShardSpec.parse(bad)


@pytest.mark.parametrize("model", MODELS)
def test_array_shards_equal_one_worker(clips: Path, tmp_path: Path, model: str):
    run_and_score(clips, tmp_path / "one", model, ParallelConfig())
    for index in range(2):
        shard = ParallelConfig(shard=f"{index}/2")
        run_model(
            BenchRunConfig(model=model, clips=clips, out=tmp_path / "two", device="cpu", parallel=shard)
        )
    for index in range(2):
        score_run(tmp_path / "two", METRICS, device="cpu", parallel=ParallelConfig(shard=f"{index}/2"))
    # The merge: every clip is scored already, so this only rebuilds the tables from the per-clip states.
    merged = score_run(tmp_path / "two", METRICS, device="cpu")
    assert merged.num_scored == 4
    assert_same(tmp_path / "one", tmp_path / "two")


@pytest.mark.slow
def test_two_ray_workers_equal_one_worker(clips: Path, tmp_path: Path):
    import ray

    # One Ray for the four stages (the executor leaves a Ray it did not start running): starting
    # it is most of the cost here.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        assert ray.cluster_resources()["CPU"] == 2
        workers = ParallelConfig(executor="ray", num_cpus=2)
        for model in MODELS:
            run_and_score(clips, tmp_path / f"{model}_one", model, ParallelConfig())
            run_model(
                BenchRunConfig(model=model, clips=clips, out=tmp_path / f"{model}_ray", parallel=workers)
            )
            # Each stage on Ray starts its actors afresh (seconds here): score one model there, the
            # other with --shard, whose scores the array test proves equal.
            scoring = workers if model == "linear" else ParallelConfig(shard="0/1")
            score_run(tmp_path / f"{model}_ray", METRICS, device="cpu", parallel=scoring)
            assert_same(tmp_path / f"{model}_one", tmp_path / f"{model}_ray")
            parts = list((tmp_path / f"{model}_ray" / "work" / "generate").glob("part-*.parquet"))
            assert len(parts) == 4  # one shard per clip (batch size 1), spread over the two workers
    finally:
        ray.shutdown()


def test_bad_parallel_settings_are_one_line_errors_before_any_work(clips: Path, tmp_path: Path):
    import importlib

    from typer.testing import CliRunner

    from sfi_bench.app import app
    from sfi_bench.cli import COMMAND_MODULES

    for module in COMMAND_MODULES:
        importlib.import_module(module)
    base = ["run", "--model", "linear", "--clips", str(clips), "--out", str(tmp_path / "run")]
    for extra, message in (
        (["--executor", "slurm"], "executor 'slurm' is not one of local, ray"),
        (["--shard", "3/2"], "--shard 3/2"),
        (["--gpus-per-worker", "-1"], "--gpus-per-worker"),
    ):
        result = CliRunner().invoke(app, base + extra)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_gpus_per_worker_without_gpus_is_refused(clips: Path, tmp_path: Path):
    parallel = ParallelConfig(executor="ray", num_cpus=1, num_gpus=1)
    config = BenchRunConfig(
        model="linear", clips=clips, out=tmp_path / "run", device="cpu", parallel=parallel
    )
    with pytest.raises(ValueError, match="--gpus-per-worker 1 but the Ray cluster has 0 GPU"):
        run_model(config)
    assert not any(FrameStore(tmp_path / "run").records())  # refused before any clip
