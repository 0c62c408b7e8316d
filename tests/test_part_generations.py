"""Newest part wins by the generation in its name, never by file time: a copied dataset resumes the same."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sfi_core.manifest import next_generation, part_generation
from sfi_core.manifest_table import merge_parts
from sfi_core.schemas import VIDEOS
from sfi_data.config import FilterStageConfig, RangeConfig, RunConfig, ScoreConfig, ThresholdConfig
from sfi_data.pipeline import run_filter
from sfi_data.synthetic import moving_texture_frames, write_video

CONFIG = FilterStageConfig(
    score=ScoreConfig(similarity="hsv-hist", flow="dis", flow_width=128, flow_height=96),
    thresholds=ThresholdConfig(similarity=RangeConfig(), flow=RangeConfig()),
)
RUN = RunConfig(executor="local", shard_size=2)


def manifest(out: Path) -> list[tuple]:
    rows = pq.read_table(out / "videos.parquet").to_pylist()
    return sorted((Path(r["source"]).name, r["status"], r["num_frames"], r["similarity"]) for r in rows)


def copy(tool: str, source: Path, target: Path) -> None:
    if tool == "cp -r":
        subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    else:
        if shutil.which("rsync") is None:
            pytest.fail("rsync is not installed (make test installs it with apt-get)")
        subprocess.run(["rsync", "-a", f"{source}/", str(target)], check=True)


@pytest.mark.parametrize("tool", ["cp -r", "rsync -a"])
def test_a_copied_dataset_resumes_with_the_same_manifests(tmp_path, tool):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        write_video(raw / f"v{i}.mp4", moving_texture_frames(90, 64, 48, seed=i), fps=24)
    (raw / "late.mp4").write_bytes(b"not yet a video")  # an error row in a shard with a good video
    out = tmp_path / "out"
    run_filter([str(raw)], out, CONFIG, RUN)
    write_video(raw / "late.mp4", moving_texture_frames(90, 64, 48, seed=9), fps=24)
    run_filter([str(raw)], out, CONFIG, RUN)  # the error is retried in a part of a later generation
    before = manifest(out)
    assert ("late.mp4", "ok", 90) == before[0][:3]
    parts = sorted((out / "work" / "filter").glob("part-*.parquet"))
    assert {part_generation(p) for p in parts} == {1, 2}

    copied = tmp_path / "copied"
    copy(tool, out, copied)
    # Whatever times the copy gave them, make the first run's parts the newest files.
    for part in (copied / "work" / "filter").glob("part-*.parquet"):
        stamp = 2_000_000_000 if part_generation(part) == 1 else 1_000_000_000
        os.utime(part, (stamp, stamp))
    run_filter([str(raw)], copied, CONFIG, RUN)
    assert manifest(copied) == before
    assert next_generation(copied / "work" / "filter") == 3


def test_parts_named_before_generations_still_merge_by_time(tmp_path):
    from sfi_core.manifest import write_rows
    from sfi_core.schemas import empty_row

    old, new = tmp_path / "part-aaaa.parquet", tmp_path / "part-bbbb.parquet"
    row = empty_row(VIDEOS) | {"video_id": "v", "status": "error"}
    write_rows([row], VIDEOS, old)
    write_rows([row | {"status": "ok"}], VIDEOS, new)
    os.utime(old, (1, 1))
    assert [r["status"] for r in merge_parts(tmp_path, VIDEOS, "video_id")] == ["ok"]
    assert next_generation(tmp_path) == 1
