"""`sfi-data run`: the whole chain from one file, weight-free, resumable, extensible."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import yaml

from sfi_data import run_pipeline as rp
from sfi_data.synthetic import moving_texture_frames, write_video
from sfi_data.testing.fake_vllm import FakeVLLMServer


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for i, dx in enumerate((1.0, 2.0, 3.0)):
        write_video(folder / f"v{i}.mp4", moving_texture_frames(90, 64, 48, dx=dx, seed=i), fps=24.0)
    return folder


def spec_for(inputs, server_url: str | None = None, **changes) -> dict:
    spec = {
        "inputs": [str(inputs)],
        "steps": ["filter", "cut", "caption", "split", "stats"],
        "run": {"executor": "local", "shard_size": 2},
        "filter": {
            "score": {"similarity": "hsv-hist", "flow": "dis"},
            "thresholds": {"similarity": {"low": 0.0, "high": 10.0}, "flow": {"low": 0.0, "high": 1e6}},
        },
        "cut": {"frame_counts": [5, 9, 81], "preset": "ultrafast", "hard_cut_threshold": None},
        "caption": {"fake_server": True, "frames": 3, "max_side": 32}
        if server_url is None
        else {
            "api_bases": [server_url],
            "model": "fake-vllm",
            "frames": 3,
            "max_side": 32,
            "backoff_base_s": 0.01,
            "max_attempts": 2,
            "concurrency": 1,
        },
        "split": {"num_videos": 1, "scales": [5, 9, 81]},
        "stats": {"plots": False},
    }
    return spec | changes


def test_whole_chain_then_resume(inputs, tmp_path):
    out = tmp_path / "ds"
    outcomes = rp.run_pipeline(spec_for(inputs), out)
    assert [(o.name, o.status) for o in outcomes] == [
        ("filter", "done"),
        ("cut", "done"),
        ("caption", "done"),
        ("split", "done"),
        ("stats", "done"),
    ]
    assert pq.read_table(out / "clips.parquet").num_rows == 9
    captions = pq.read_table(out / "captions.parquet").to_pylist()
    assert len(captions) == 9 and all(c["status"] == "ok" and c["model"] == "fake-vllm" for c in captions)
    test = pq.read_table(out / "test.parquet").to_pylist()
    assert len(test) == 3 and all(row["caption"] for row in test)
    assert pq.read_table(out / "train.parquet").num_rows == 6
    assert (out / "DATASET_CARD.md").exists()
    state = json.loads((out / rp.STATE_FILE).read_text())
    assert all(step["status"] == "done" for step in state["steps"].values())
    # Rerun: every step finished with these settings, nothing is redone.
    again = rp.run_pipeline(spec_for(inputs), out)
    assert {o.status for o in again} == {"skipped"}
    # A changed split setting reruns the split and what follows, not the steps before it.
    changed = rp.run_pipeline(spec_for(inputs, split={"num_videos": 2, "scales": [5, 9, 81]}), out)
    assert [o.status for o in changed] == ["skipped", "skipped", "skipped", "done", "done"]
    assert pq.read_table(out / "test.parquet").num_rows == 6


def test_failed_captions_make_the_step_incomplete_and_a_rerun_finishes(inputs, tmp_path):
    out = tmp_path / "ds"
    with FakeVLLMServer(model="fake-vllm") as server:
        spec = spec_for(inputs, server.url, steps=["filter", "cut", "caption"])
        server.inject(error_500=4)  # two clips exhaust their two attempts
        first = rp.run_pipeline(spec, out)
        assert first[-1].status == "incomplete" and first[-1].summary["failed"] == 2
        second = rp.run_pipeline(spec, out)
        assert [o.status for o in second] == ["skipped", "skipped", "done"]
        assert second[-1].summary["ok"] == 2 and second[-1].summary["skipped"] == 7


def test_only_and_from(inputs, tmp_path):
    out = tmp_path / "ds"
    rp.run_pipeline(spec_for(inputs), out, only=["filter"])
    assert (out / "videos.parquet").exists() and not (out / "clips.parquet").exists()
    outcomes = rp.run_pipeline(spec_for(inputs, steps=["filter", "cut"]), out, start_at="cut")
    assert [o.name for o in outcomes] == ["cut"]
    with pytest.raises(ValueError, match="did you mean 'caption'"):
        rp.run_pipeline(spec_for(inputs), out, only=["captoin"])


def test_a_new_step_is_one_registry_entry(inputs, tmp_path, monkeypatch):
    seen = []

    class CountClips(rp.PipelineStep):
        name = "count_clips"

        def run(self, ctx):
            seen.append(pq.read_table(ctx.out_dir / "clips.parquet").num_rows)
            return {"clips": seen[-1]}

    monkeypatch.setitem(rp.STEPS, "count_clips", CountClips)
    outcomes = rp.run_pipeline(spec_for(inputs, steps=["filter", "cut", "count_clips"]), tmp_path / "ds")
    assert outcomes[-1].summary == {"clips": 9} and seen == [9]


def test_shipped_pipelines_parse(tmp_path):
    from pathlib import Path

    root = Path(__file__).parents[1] / "pipelines"
    for name in ("sfi300k.yaml", "demo.yaml"):
        spec = rp.load_pipeline(root / name)
        assert spec["steps"] == rp.DEFAULT_STEPS
    paper = yaml.safe_load((root / "sfi300k.yaml").read_text())
    assert paper["cut"]["frame_counts"] == [5, 9, 17, 33, 65, 81]
    assert paper["split"]["num_videos"] == 100 and paper["caption"]["model"] == "Qwen/Qwen2.5-VL-32B-Instruct"
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [x]\ncaptions: {}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        rp.load_pipeline(bad)
