"""SIGKILL a run midway, rerun it: no duplicates, no gaps, no partial files, manifests equal a clean run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

WEIGHT_FREE = ["--similarity", "hsv-hist", "--flow", "dis", "--executor", "local", "--shard-size", "1"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sfi_data.cli", *args]


def run_and_kill(command: list[str], parts_dir: Path, total: int) -> int:
    """Start `command`, SIGKILL it once at least one shard (of `total`) is finished; return the parts seen."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if parts_dir.exists() and len(list(parts_dir.glob("part-*.parquet"))) >= 1:
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = len(list(parts_dir.glob("part-*.parquet"))) if parts_dir.exists() else 0
    assert 1 <= done < total, f"the kill should land mid-run ({done}/{total} shards done)"
    return done


def files_under(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "work" not in p.parts and p.name != "sfi-data.log"
    )


@pytest.mark.slow
def test_kill_9_then_rerun_equals_an_uninterrupted_run(tmp_path, make_video):
    videos = [
        make_video(f"v{i:02d}.mp4", 90 + 3 * i, dx=1 + i % 3, seed=i, width=192, height=144) for i in range(8)
    ]
    (tmp_path / "raw" / "broken.mp4").write_bytes(b"\x00" * 100)
    raw = str(tmp_path / "raw")
    thresholds = ["--sim-low-quantile", "0.1", "--flow-high-quantile", "0.9"]
    clean, resumed = tmp_path / "clean", tmp_path / "resumed"

    subprocess.run(
        cli("filter", raw, "--out", str(clean), *WEIGHT_FREE, *thresholds), check=True, capture_output=True
    )
    subprocess.run(
        cli("cut", "--out", str(clean), *WEIGHT_FREE, "--preset", "ultrafast"),
        check=True,
        capture_output=True,
    )

    run_and_kill(
        cli("filter", raw, "--out", str(resumed), *WEIGHT_FREE, *thresholds),
        resumed / "work" / "filter",
        total=len(videos) + 1,
    )
    assert not (resumed / "videos.parquet").exists()
    subprocess.run(
        cli("filter", raw, "--out", str(resumed), *WEIGHT_FREE, *thresholds), check=True, capture_output=True
    )
    kept = sum(r["status"] == "ok" for r in pq.read_table(resumed / "videos.parquet").to_pylist())
    run_and_kill(
        cli("cut", "--out", str(resumed), *WEIGHT_FREE, "--preset", "ultrafast"),
        resumed / "work" / "cut",
        total=kept,
    )
    subprocess.run(
        cli("cut", "--out", str(resumed), *WEIGHT_FREE, "--preset", "ultrafast"),
        check=True,
        capture_output=True,
    )

    for manifest in ("videos.parquet", "clips.parquet"):
        assert pq.read_table(resumed / manifest).equals(pq.read_table(clean / manifest)), manifest
    clips = pq.read_table(resumed / "clips.parquet").to_pylist()
    assert len({c["clip_id"] for c in clips}) == len(clips) == 6 * kept
    assert files_under(resumed) == files_under(clean)
    assert not [p for p in resumed.rglob("*.tmp")], "no partial files may remain"
