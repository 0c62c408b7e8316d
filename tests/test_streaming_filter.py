"""The streamed filter (fetch on CPU tasks, scoring on actors) writes the local executor's manifest and resumes per shard."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from sfi_core.executors import streaming
from sfi_data.config import FilterStageConfig, RangeConfig, RunConfig, ScoreConfig, ThresholdConfig
from sfi_data.pipeline import run_filter
from sfi_data.stages.fetch import FRAMES, FirstLastFetchStage

CONFIG = FilterStageConfig(
    score=ScoreConfig(similarity="hsv-hist", flow="dis", flow_width=128, flow_height=96),
    thresholds=ThresholdConfig(similarity=RangeConfig(low_quantile=0.1), flow=RangeConfig(high_quantile=0.9)),
)


def inputs_with_every_outcome(tmp_path, make_video) -> list[str]:
    """Kept and thresholded videos, a too-short one (meta reject), an unreadable file (probe error)."""
    inputs = [str(make_video(f"v{i}.mp4", 85 + 5 * i, dx=1 + i % 3, seed=i)) for i in range(5)]
    inputs.append(str(make_video("short.mp4", 40)))
    (tmp_path / "raw" / "bad.mp4").write_bytes(b"nope")
    return inputs + [str(tmp_path / "raw" / "bad.mp4")]


def test_fetch_stage_attaches_frames_only_to_kept_rows(tmp_path, make_video):
    path = make_video("a.mp4", 90)
    stage = FirstLastFetchStage(tmp_path, "pyav")
    row = {"status": "ok", "path": str(path), "num_frames": 90}
    first, last = stage.process_row(row)[0][FRAMES]
    assert first.shape == last.shape == (96, 128, 3) and not (first == last).all()
    assert FRAMES not in stage.process_row(row | {"status": "rejected"})[0]
    # Unreadable frames: the row goes on bare, and the score stage records why (as unstreamed).
    assert FRAMES not in stage.process_row(row | {"path": str(tmp_path / "gone.mp4")})[0]


@pytest.mark.slow  # Ray start-up: about 7 s on 2 busy cores
def test_streamed_filter_equals_local_and_resumes_per_shard(tmp_path, make_video, monkeypatch):
    inputs = inputs_with_every_outcome(tmp_path, make_video)
    run_filter(inputs, tmp_path / "local", CONFIG, RunConfig(executor="local"))
    streamed_calls = []
    real_map, real_stream = streaming.StreamingExecutor.map_shards, streaming.StreamingExecutor._stream

    def streamed_as_with_a_gpu(self, stage, shards, schema):
        stage.streamed = True  # what run_filter sets with a GPU share (this machine has no GPU)
        yield from real_map(self, stage, shards, schema)

    def spy(self, stage, shards, schema):
        streamed_calls.append(len(shards))
        yield from real_stream(self, stage, shards, schema)

    monkeypatch.setattr(streaming.StreamingExecutor, "map_shards", streamed_as_with_a_gpu)
    monkeypatch.setattr(streaming.StreamingExecutor, "_stream", spy)
    out = tmp_path / "streamed"
    run = RunConfig(executor="ray", num_cpus=2, shard_size=2)
    run_filter(inputs, out, CONFIG, run)
    assert streamed_calls == [4]  # 7 inputs in shards of 2, all through the streaming path

    def manifest(folder):
        return pq.read_table(folder / "videos.parquet").drop(["path"]).to_pylist()

    local = manifest(tmp_path / "local")
    assert manifest(out) == local
    assert {r["status"] for r in local} == {"ok", "rejected", "error"}
    settings = json.loads((out / "work" / "filter" / "settings.json").read_text())
    assert settings == json.loads((tmp_path / "local" / "work" / "filter" / "settings.json").read_text())
    # Resume: a lost part's inputs and the error rows (always retried) are redone, by the streamed path.
    parts = sorted((out / "work" / "filter").glob("part-*.parquet"))
    assert len(parts) == 4
    redo = set(pq.read_table(parts[0]).column("video_id").to_pylist())
    redo |= {r["video_id"] for r in local if r["status"] == "error"}
    parts[0].unlink()
    summary = run_filter(inputs, out, CONFIG, run)
    assert (summary.processed, summary.skipped) == (len(redo), len(inputs) - len(redo))
    assert streamed_calls == [4, -(-len(redo) // 2)]
    assert manifest(out) == local
