"""Scoring: per-clip resume, a failing metric leaves the others standing, regenerated clips are rescored."""

from __future__ import annotations

from pathlib import Path

import pytest

import sfi_bench.scoring as scoring
from sfi_bench.generate import BenchRunConfig, run_model
from sfi_bench.metrics.temporal_flickering import TemporalFlickering
from sfi_bench.score_run import score_run
from sfi_data.testing.toy_dataset import build_toy_dataset


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    build_toy_dataset(tmp_path / "data", num_videos=1, scales=(5, 9, 17), width=48, height=32)
    out = tmp_path / "run"
    run_model(
        BenchRunConfig(model="linear", clips=tmp_path / "data" / "clips.parquet", out=out, device="cpu")
    )
    return out


def all_row(outputs, metric: str) -> dict:
    return next(r for r in outputs.summary if r["metric"] == metric and r["group"] == "All")


def count_decodes(monkeypatch) -> list[str]:
    decoded: list[str] = []
    real = scoring.clip_sample

    def counting(store, record, clip, model):
        decoded.append(clip.clip_id)
        return real(store, record, clip, model)

    monkeypatch.setattr(scoring, "clip_sample", counting)
    return decoded


def test_a_rerun_scores_nothing_again_and_a_new_metric_only_that(run_dir: Path, monkeypatch):
    first = score_run(run_dir, ["temporal_flickering"], device="cpu")
    decoded = count_decodes(monkeypatch)
    again = score_run(run_dir, ["temporal_flickering"], device="cpu")
    assert decoded == [] and again.summary == first.summary
    added = score_run(run_dir, ["endpoint_psnr"], device="cpu")
    assert len(decoded) == 3  # each clip decoded once more, for the new metric only
    assert all_row(added, "temporal_flickering") == all_row(first, "temporal_flickering")
    assert all_row(added, "endpoint_psnr")["clips_scored"] == 3
    redone = score_run(run_dir, ["endpoint_psnr"], device="cpu", overwrite=True)
    assert len(decoded) == 6 and all_row(redone, "temporal_flickering") == all_row(
        first, "temporal_flickering"
    )


def test_regenerated_clips_are_rescored(run_dir: Path, tmp_path: Path, monkeypatch):
    score_run(run_dir, ["temporal_flickering"], device="cpu")
    clips = tmp_path / "data" / "clips.parquet"
    run_model(BenchRunConfig(model="linear", clips=clips, out=run_dir, device="cpu", overwrite=True, limit=1))
    decoded = count_decodes(monkeypatch)
    score_run(run_dir, ["temporal_flickering"], device="cpu")
    assert len(decoded) == 1  # only the clip whose record changed


def test_a_metric_failing_on_one_clip_is_not_computed_there_and_the_rest_stands(run_dir: Path, monkeypatch):
    real = TemporalFlickering.update

    def flaky(self, sample):
        if sample.num_frames == 9:
            raise ValueError("frames under 128 px")
        return real(self, sample)

    monkeypatch.setattr(TemporalFlickering, "update", flaky)
    outputs = score_run(run_dir, ["temporal_flickering", "endpoint_psnr"], device="cpu")
    by_group = {r["group"]: r for r in outputs.summary if r["metric"] == "temporal_flickering"}
    assert by_group["9"]["value"] is None and "frames under 128 px" in by_group["9"]["reason"]
    assert by_group["All"]["clips_scored"] == 2 and by_group["All"]["value"] is not None
    assert by_group[
        "All"
    ][
        "reason"
    ].startswith(
        "1 clip(s) not computed, e.g. vid0000_f09: ValueError: frames under 128 px"  # one note format for score and evaluate
    )
    assert by_group["5"]["reason"] is None
    assert all_row(outputs, "endpoint_psnr")["clips_scored"] == 3
    monkeypatch.setattr(TemporalFlickering, "update", real)
    retried = score_run(run_dir, ["temporal_flickering"], device="cpu")  # failures are retried
    assert all_row(retried, "temporal_flickering")["clips_scored"] == 3


def test_a_corrupt_weight_file_is_not_computed_and_the_others_are(run_dir: Path, tmp_path: Path):
    from sfi_bench.metrics import metric_class
    from sfi_core.weights import WEIGHTS

    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / WEIGHTS[metric_class("dynamic_degree").weights[0]].filename).write_bytes(b"not a checkpoint")
    outputs = score_run(
        run_dir, ["dynamic_degree", "temporal_flickering"], device="cpu", weights_dir=str(weights)
    )
    broken = all_row(outputs, "dynamic_degree")
    assert broken["value"] is None and broken["status"] == "not computed" and broken["reason"]
    assert all_row(outputs, "temporal_flickering")["value"] is not None
    assert not outputs.computed("dynamic_degree") and outputs.computed("temporal_flickering")


def test_uncertainty_is_the_standard_error_and_a_bootstrap_interval():
    import numpy as np

    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    result = scoring.uncertainty(values)
    assert result["stderr"] == pytest.approx(np.std(values, ddof=1) / np.sqrt(5))
    assert result["ci95_low"] < np.mean(values) < result["ci95_high"]
    assert scoring.uncertainty([1.0])["stderr"] is None


def test_score_states_round_trip_without_pickle():
    import numpy as np
    import torch

    from sfi_bench.state_io import StateEncoder, decode_state, encode_state

    state = {
        "total": 3.5,
        "count": np.int64(2),
        "features": [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((1, 3), np.float32)],
        "sums": torch.tensor([1.0, 2.0]),
        "names": {"a": None, "b": "x"},
    }
    back = decode_state(encode_state(state))
    assert back["total"] == 3.5 and back["count"] == 2 and back["names"] == {"a": None, "b": "x"}
    assert all(np.array_equal(x, y) for x, y in zip(back["features"], state["features"], strict=True))
    assert isinstance(back["sums"], torch.Tensor) and torch.equal(back["sums"], state["sums"])
    with pytest.raises(TypeError, match="cannot store"):
        StateEncoder().encode({"model": object()})


def test_score_and_evaluate_are_one_evaluation_path(run_dir: Path):
    """`sfi-bench score` (states stored per clip, merged from the files) and `metrics.suite.evaluate`
    (in memory: the tests and gpu_check) give the same values, per group and for All, and merging
    declared states equals updating one state with every clip."""
    import pyarrow.parquet as pq

    from sfi_bench.metrics import metric_class
    from sfi_bench.metrics.suite import evaluate
    from sfi_bench.storage import FrameStore
    from sfi_bench.testset import load_test_clips

    metrics = ["temporal_flickering", "endpoint_psnr", "psnr_all"]
    outputs = score_run(run_dir, metrics, device="cpu")
    stored = {(r["metric"], r["group"]): r for r in pq.read_table(outputs.summary_path).to_pylist()}
    store = FrameStore(run_dir)
    model = store.read_run_info()["model"]
    clips = load_test_clips(Path(store.read_run_info()["clips_manifest"]))
    samples = [scoring.clip_sample(store, store.read_record(c.clip_id), c, model) for c in clips]
    memory = {(r["metric"], r["group"]): r for r in evaluate(samples, metrics, device="cpu").summary}
    assert set(memory) == set(stored)
    for key, row in memory.items():
        assert (
            row["value"] == pytest.approx(stored[key]["value"])
            and row["num_samples"] == stored[key]["num_samples"]
        )
    one = metric_class("temporal_flickering")(device="cpu")
    for sample in samples:
        one.update(sample)
    merged = metric_class("temporal_flickering")(device="cpu")
    for sample in samples:
        state = one.fresh()
        state.update(sample)
        merged.merge(metric_class("temporal_flickering")(device="cpu").load_state(state.state()))
    assert merged.state() == pytest.approx(one.state()) and set(one.state()) == {"total", "weight", "count"}


def flaky_flickering(monkeypatch, frames: int) -> None:
    real = TemporalFlickering.update

    def flaky(self, sample):
        if sample.num_frames == frames:
            raise ValueError("a failure retried on the next run")
        return real(self, sample)

    monkeypatch.setattr(TemporalFlickering, "update", flaky)


@pytest.mark.parametrize("tool", ["cp -r", "rsync -a"])
def test_scores_are_rows_of_the_driver_s_ledger_and_a_copy_resumes_the_same(
    run_dir: Path, tmp_path: Path, monkeypatch, tool: str
):
    """One row per (clip, metric) in RUNDIR/work/score/; an error row and the retry that superseded it
    are ordered by their parts' generations, so a copy whose file times are reversed (cp -r resets
    them; here the newest part is made the oldest) resumes with nothing rescored."""
    import os
    import shutil
    import subprocess

    import pyarrow.parquet as pq

    with monkeypatch.context() as patch:
        flaky_flickering(patch, 9)
        score_run(run_dir, ["temporal_flickering", "endpoint_psnr"], device="cpu")
    first = score_run(run_dir, ["temporal_flickering"], device="cpu")  # the 9-frame clip retried: ok now
    assert all_row(first, "temporal_flickering")["clips_scored"] == 3
    parts = sorted((run_dir / scoring.LEDGER).glob("part-*.parquet"))
    rows = pq.read_table(parts).to_pylist()
    assert {(r["clip_id"], r["metric"], r["status"]) for r in rows} >= {
        ("vid0000_f09", "temporal_flickering", "error"),
        ("vid0000_f09", "temporal_flickering", "ok"),
    }
    assert len({r["score_key"] for r in rows}) == 6 and not (run_dir / "scores").exists()

    copy = tmp_path / "copy"
    if tool == "cp -r":
        subprocess.run(["cp", "-r", str(run_dir), str(copy)], check=True)
        for age, part in enumerate(sorted((copy / scoring.LEDGER).glob("part-*.parquet"))):
            os.utime(part, (1e9 - age * 1000, 1e9 - age * 1000))  # the later generation, the older file
    else:
        if shutil.which("rsync") is None:
            pytest.fail("rsync is not installed (make test installs it with apt-get)")
        subprocess.run(["rsync", "-a", f"{run_dir}/", str(copy)], check=True)
    decoded = count_decodes(monkeypatch)
    again = score_run(copy, ["temporal_flickering", "endpoint_psnr"], device="cpu")
    assert decoded == []
    assert [{k: v for k, v in r.items() if k != "model"} for r in again.summary] == [
        {k: v for k, v in r.items() if k != "model"} for r in first.summary
    ]


def test_a_metric_changed_on_one_slice_is_never_merged_with_the_other_slice_s_values(
    run_dir: Path, monkeypatch
):
    """After a version change, an array job's slice that has rerun holds new values and the others old
    ones: the tables count the new ones only and say how many were left out, until every clip is
    scored again."""
    from sfi_bench.generate import ParallelConfig

    score_run(run_dir, ["temporal_flickering"], device="cpu")
    monkeypatch.setattr(TemporalFlickering, "version", f"{TemporalFlickering.version}-next")
    decoded = count_decodes(monkeypatch)
    half = score_run(run_dir, ["temporal_flickering"], device="cpu", parallel=ParallelConfig(shard="0/2"))
    row = all_row(half, "temporal_flickering")
    assert len(decoded) == row["clips_scored"] == 2  # the 5- and 17-frame clips, every other one
    assert "1 clip(s) scored with another version or weights of temporal_flickering" in row["reason"]
    whole = score_run(run_dir, ["temporal_flickering"], device="cpu")
    assert len(decoded) == 3 and all_row(whole, "temporal_flickering")["clips_scored"] == 3
    assert all_row(whole, "temporal_flickering")["reason"] is None


def test_a_run_scored_before_the_ledger_is_adopted(run_dir: Path, monkeypatch):
    """scores/clips/{clip_id}.npz (the layout before the ledger, written here as it was) become one
    part; nothing is scored again, and an entry made from other frames does not count."""
    import json

    import numpy as np
    import pyarrow.parquet as pq

    from sfi_bench.state_io import META_KEY, StateEncoder
    from sfi_bench.storage import FrameStore

    first = score_run(run_dir, ["temporal_flickering"], device="cpu")
    rows = pq.read_table(sorted((run_dir / scoring.LEDGER).glob("part-*.parquet"))).to_pylist()
    store = FrameStore(run_dir)
    (run_dir / "scores" / "clips").mkdir(parents=True)
    for row in rows:
        encoder = StateEncoder()
        state = scoring.decode_state(row["state"])
        entry = {
            "value": row["value"],
            "state": encoder.encode(state),
            "version": row["version"],
            "reason": None,
        }
        digest = (
            "frames since made anew"
            if row["clip_id"] == "vid0000_f17"
            else store.record_digest(row["clip_id"])
        )
        meta = {"record_digest": digest, "entries": {row["metric"]: entry}}
        blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        np.savez(run_dir / "scores" / "clips" / f"{row['clip_id']}.npz", **{META_KEY: blob}, **encoder.arrays)
    for part in (run_dir / scoring.LEDGER).glob("part-*.parquet"):
        part.unlink()
    decoded = count_decodes(monkeypatch)
    adopted = score_run(run_dir, ["temporal_flickering"], device="cpu")
    assert decoded == ["vid0000_f17"]  # only the clip whose frames changed since its legacy entry
    assert all_row(adopted, "temporal_flickering")["value"] == all_row(first, "temporal_flickering")["value"]
