"""A real two-node Ray cluster on this machine: filter, cut and sfi-bench run with --address equal local runs."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sfi_bench.generate import BenchRunConfig, ParallelConfig, run_model
from sfi_bench.storage import FrameStore
from sfi_data.config import CutConfig, FilterStageConfig, RangeConfig, RunConfig, ScoreConfig, ThresholdConfig
from sfi_data.pipeline import run_cut, run_filter
from sfi_data.testing.toy_dataset import build_toy_dataset

RAY = str(Path(sys.executable).parent / "ray")
CLI = [sys.executable, "-m", "sfi_data.cli"]
BENCH_CLI = [sys.executable, "-m", "sfi_bench.cli"]
START_TIMEOUT_S = 45.0
SCORE = ["--similarity", "hsv-hist", "--flow", "dis"]
SCORE_CONFIG = ScoreConfig(similarity="hsv-hist", flow="dis")
OPEN = ["--sim-low", "0", "--flow-low", "0"]
OPEN_CONFIG = ThresholdConfig(similarity=RangeConfig(low=0.0), flow=RangeConfig(low=0.0))
SCALES = ["--frame-counts", "5,17"]
CUT_CONFIG = CutConfig(frame_counts=(5, 17))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(args: list[str], temp_dir: str, env: dict, log: Path) -> subprocess.Popen:
    """`ray start ... --block`: the command stays in the foreground, so its pid stops the node and its children."""
    command = [RAY, "start", *args, "--num-cpus", "1", "--num-gpus", "0", "--node-ip-address", "127.0.0.1"]
    command += ["--temp-dir", temp_dir, "--disable-usage-stats", "--block"]
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def stop_node(node: subprocess.Popen) -> None:
    # SIGTERM to a blocking `ray start` ends the node's processes (GCS, raylet, workers) with it.
    node.terminate()
    try:
        node.wait(timeout=20)
    except subprocess.TimeoutExpired:
        node.kill()
        node.wait()


def wait_for_cpus(
    address: str, cpus: int, env: dict, nodes: list[subprocess.Popen], logs: list[Path]
) -> None:
    """Until the cluster reports `cpus` CPUs (both nodes joined); fail with the logs if a node died."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        for node, log in zip(nodes, logs, strict=True):
            if node.poll() is not None:
                pytest.fail(
                    f"a Ray node exited with {node.returncode}:\n{log.read_text(errors='replace')[-2000:]}"
                )
        status = subprocess.run(
            [RAY, "status", "--address", address], capture_output=True, text=True, env=env
        )
        if f"/{cpus}.0 CPU" in status.stdout:
            return
        time.sleep(0.5)
    pytest.fail(f"the cluster did not reach {cpus} CPUs in {START_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    """Head + one worker node, 1 CPU each, token-authenticated, in a temp dir of their own."""
    tmp_path = tmp_path_factory.mktemp("ray_cluster")
    # Ray's socket paths must fit 107 bytes: a short temp dir, not pytest's long tmp_path.
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    address = f"127.0.0.1:{free_port()}"
    logs = [tmp_path / "head.log", tmp_path / "worker.log"]
    nodes = [
        start_node(
            ["--head", "--port", address.split(":")[1], "--include-dashboard", "false"],
            temp_dir,
            env,
            logs[0],
        )
    ]
    try:
        nodes.append(start_node(["--address", address], temp_dir, env, logs[1]))
        wait_for_cpus(address, 2, env, nodes, logs)
        yield address, env
    finally:
        for node in reversed(nodes):
            stop_node(node)
        shutil.rmtree(temp_dir, ignore_errors=True)


def command(cli: list[str], args: list[str], env: dict) -> None:
    result = subprocess.run(cli + args, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_filter_and_cut_on_a_two_node_cluster_match_the_local_executor(
    tmp_path, make_video, two_node_cluster
):
    address, env = two_node_cluster
    raw = tmp_path / "raw"
    for i in range(4):
        make_video(f"v{i}.mp4", 85 + 10 * i, dx=1 + i, seed=i, folder=raw)
    (raw / "broken.mp4").write_bytes(b"not a video")
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    run_filter(
        [str(raw)], local, FilterStageConfig(score=SCORE_CONFIG, thresholds=OPEN_CONFIG), RunConfig("local")
    )
    run_cut(local, CUT_CONFIG, RunConfig("local"))
    on_cluster = ["--out", str(cluster), "--executor", "ray", "--address", address, "--shard-size", "1"]
    command(CLI, ["filter", *on_cluster, *SCORE, *OPEN, str(raw)], env)
    command(CLI, ["cut", *on_cluster, *SCALES], env)
    for manifest in ("videos.parquet", "clips.parquet"):
        assert pq.read_table(cluster / manifest).to_pylist() == pq.read_table(local / manifest).to_pylist()
    clips = pq.read_table(cluster / "clips.parquet").to_pylist()
    assert sorted(row["status"] for row in clips) == ["ok"] * 8
    assert all((cluster / row["clip_path"]).is_file() for row in clips)


def generations(run_dir: Path) -> tuple[dict, dict]:
    """Frames and records (wall times left out: they differ between any two runs) of a run directory."""
    store = FrameStore(run_dir)
    records = {record.clip_id: record for record in store.records()}
    frames = {clip_id: store.read_frames(record.frames_path) for clip_id, record in records.items()}
    plain = {clip_id: {k: v for k, v in vars(r).items() if k != "seconds"} for clip_id, r in records.items()}
    return frames, plain


@pytest.mark.slow
def test_sharded_bench_run_on_a_two_node_cluster_matches_one_worker(tmp_path, two_node_cluster):
    address, env = two_node_cluster
    build_toy_dataset(tmp_path / "data", num_videos=2, scales=(5, 9), width=48, height=32)
    clips = tmp_path / "data" / "clips.parquet"
    run_model(BenchRunConfig("linear", clips, tmp_path / "one", device="cpu", parallel=ParallelConfig()))
    cluster = ["--executor", "ray", "--address", address, "--device", "cpu"]
    command(
        BENCH_CLI,
        ["run", "--model", "linear", "--clips", str(clips), "--out", str(tmp_path / "two"), *cluster],
        env,
    )
    (frames_one, records_one), (frames_two, records_two) = (
        generations(tmp_path / "one"),
        generations(tmp_path / "two"),
    )
    assert records_two == records_one and len(records_one) == 4
    assert all(np.array_equal(frames_two[k], frames_one[k]) for k in frames_one)
