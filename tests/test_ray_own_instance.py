"""With an unrelated `ray start --head` cluster on the machine, the ray executor starts its own instance."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HEAD_START_TIMEOUT_S = 60
HEAD_STOP_TIMEOUT_S = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unrelated_ray_head(monkeypatch) -> Iterator[str]:
    """A `ray start --head` in its own temp dir, found by ray.init() the way it finds any such cluster.

    RAY_TMPDIR points Ray's default temp dir (where `ray start` records the cluster address that a
    bare ray.init() joins) at a private folder, so no other Ray on this machine is touched. A short
    path: Ray's socket names must fit in 107 bytes.
    """
    temp = Path(tempfile.mkdtemp(prefix="rayh", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(temp)}
    ray_cli = Path(sys.executable).parent / "ray"
    command = [str(ray_cli), "start", "--head", "--block", f"--port={free_port()}", "--num-cpus=1"]
    command += ["--include-dashboard=false", "--disable-usage-stats"]
    with open(temp / "head.log", "wb") as log:
        # Its own process group: the head and everything it starts are stopped by this pid alone.
        head = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    address_file = temp / "ray" / "ray_current_cluster"
    try:
        deadline = time.monotonic() + HEAD_START_TIMEOUT_S
        while not address_file.exists():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start --head did not come up: {(temp / 'head.log').read_text()[-2000:]}")
            time.sleep(0.2)
        monkeypatch.setenv("RAY_TMPDIR", str(temp))
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        yield address_file.read_text().strip()
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(HEAD_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # `ray start --block` can take longer than the test itself
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_filter_runs_on_its_own_ray_beside_an_unrelated_cluster(unrelated_ray_head, tmp_path, make_video):
    import pyarrow.parquet as pq
    import ray
    from typer.testing import CliRunner

    import sfi_data.commands.curate  # noqa: F401  (registers filter)
    from sfi_data.app import app

    joined: list[str] = []
    original_init = ray.init

    def recording_init(*args, **kwargs):
        context = original_init(*args, **kwargs)
        joined.append(ray.get_runtime_context().gcs_address)
        return context

    videos = [str(make_video("v.mp4", 85))]
    out = tmp_path / "out"
    options = ["--out", str(out), *"--similarity hsv-hist --flow dis --executor ray --num-cpus 1".split()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ray, "init", recording_init)
        result = CliRunner().invoke(app, ["filter", *videos, *options])
    assert result.exit_code == 0, result.output
    assert joined and joined[0] != unrelated_ray_head, "the filter joined the unrelated cluster"
    assert pq.read_table(out / "videos.parquet")["status"].to_pylist() == ["ok"]
    assert not ray.is_initialized()  # its own instance is shut down again; the other one runs on
