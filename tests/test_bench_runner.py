"""The harness: same inputs for every model, lossless storage, per-clip records, resume, import, score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from sfi_bench.generate import BenchRunConfig, BenchRunner
from sfi_bench.importer import import_outputs
from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.score_run import score_run
from sfi_bench.storage import FrameStore
from sfi_bench.testset import fit_to_clip, load_test_clips
from sfi_core.video import encode_video
from sfi_data.testing.toy_dataset import build_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    build_toy_dataset(root, num_videos=1, scales=(5, 9, 17), width=48, height=32)
    return root / "clips.parquet"


class Recorder(SFIModel):
    """Returns what it is given, at another length and size, and remembers every request."""

    name = "recorder"
    version = "7"

    def __init__(self, native: int | None = None, scale: int = 1, fail_on: str | None = None) -> None:
        super().__init__()
        self.native, self.scale, self.fail_on = native, scale, fail_on
        self.requests: list[SFIRequest] = []

    def generate(self, request: SFIRequest) -> SFIResult:
        if request.clip_id == self.fail_on:
            raise RuntimeError("out of memory (simulated)")
        self.requests.append(request)
        count = self.native or request.num_frames
        frames = np.stack([request.first_frame] * (count - 1) + [request.last_frame])
        frames = np.repeat(np.repeat(frames, self.scale, axis=1), self.scale, axis=2)
        return SFIResult(frames, {"sampler": "copy"})


def config(toy: Path, out: Path, model: str = "linear", **kw) -> BenchRunConfig:
    return BenchRunConfig(model=model, clips=toy, out=out, **kw)


def test_load_test_clips_resolves_paths_and_prompts(toy: Path):
    import pyarrow as pa

    clips = load_test_clips(toy)
    assert [c.num_frames for c in clips] == [5, 9, 17]
    assert all(c.first_frame_path.is_file() and c.clip_path.is_file() for c in clips)
    table = pq.read_table(toy)
    captions = pa.array(["a texture slides", None, "x"], pa.string())
    pq.write_table(table.append_column("caption", captions), toy.parent / "test.parquet")
    prompts = [c.prompt for c in load_test_clips(toy.parent / "test.parquet")]
    assert prompts == ["a texture slides", "", "x"]


def test_run_stores_frames_losslessly_with_records(toy: Path, tmp_path: Path):
    model = Recorder()
    runner = BenchRunner(config(toy, tmp_path / "run", model="recorder", seed=3), model=model)
    summary = runner.run()
    assert summary.generated == 3 and summary.errors == 0
    store = FrameStore(tmp_path / "run")
    for request in model.requests:
        record = store.read_record(request.clip_id)
        stored = store.read_frames(record.frames_path)
        assert np.array_equal(stored[0], request.first_frame) and np.array_equal(
            stored[-1], request.last_frame
        )
        assert record.seed == 3 and record.model_version == "7" and record.info == {"sampler": "copy"}
        assert record.seconds >= 0 and not record.resampled and record.resized_from is None
    assert [r.num_frames for r in model.requests] == [5, 9, 17]
    table = pq.read_table(tmp_path / "run" / "generations.parquet").to_pylist()
    assert {row["clip_id"] for row in table} == {r.clip_id for r in model.requests}
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["model"] == "recorder" and info["clips_manifest"] == str(toy.resolve())


def test_rerun_skips_finished_and_retries_errors(toy: Path, tmp_path: Path):
    failing = Recorder(fail_on="vid0000_f09")
    first = BenchRunner(config(toy, tmp_path / "run", model="recorder"), model=failing).run()
    assert (first.generated, first.errors) == (2, 1)
    record = FrameStore(tmp_path / "run").read_record("vid0000_f09")
    assert record.status == "error" and "out of memory" in record.reason
    again = Recorder()
    second = BenchRunner(config(toy, tmp_path / "run", model="recorder"), model=again).run()
    assert (second.already_done, second.generated) == (2, 1)
    assert [r.clip_id for r in again.requests] == ["vid0000_f09"]


def test_other_lengths_and_sizes_are_fitted_and_recorded(toy: Path, tmp_path: Path):
    BenchRunner(config(toy, tmp_path / "run", model="recorder"), model=Recorder(native=25, scale=2)).run()
    store = FrameStore(tmp_path / "run")
    record = store.read_record("vid0000_f09")
    assert (record.native_num_frames, record.resampled, record.resample_mode) == (25, True, "nearest")
    assert record.resized_from == "96x64"
    assert store.read_frames(record.frames_path).shape == (9, 32, 48, 3)


def test_fit_to_clip_keeps_endpoints():
    frames = np.arange(25, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    fitted = fit_to_clip(frames, 9, 4, 4, "nearest")
    assert fitted.frames[0, 0, 0, 0] == 0 and fitted.frames[-1, 0, 0, 0] == 24 and len(fitted.frames) == 9
    with pytest.raises(ValueError, match="uint8"):
        fit_to_clip(frames.astype(np.float32), 9, 4, 4, "nearest")


def test_skipped_clips_keep_their_reason(toy: Path, tmp_path: Path):
    class OnlyFive(Recorder):
        def skip_reason(self, request: SFIRequest) -> str | None:
            return None if request.num_frames == 5 else f"N={request.num_frames} is not native"

    summary = BenchRunner(config(toy, tmp_path / "run", model="recorder"), model=OnlyFive()).run()
    assert (summary.generated, summary.skipped) == (1, 2)
    record = FrameStore(tmp_path / "run").read_record("vid0000_f17")
    assert record.status == "skipped" and record.reason == "N=17 is not native"


def test_one_run_directory_per_model(toy: Path, tmp_path: Path):
    BenchRunner(config(toy, tmp_path / "run", model="linear", frame_counts=(5,))).run()
    with pytest.raises(ValueError, match="one run directory per model"):
        BenchRunner(config(toy, tmp_path / "run", model="repeat")).run()


def test_png_store_round_trips(tmp_path: Path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 7, 5, 3), dtype=np.uint8)
    for store_format in ("png", "ffv1"):
        store = FrameStore(tmp_path / store_format, store_format)
        assert np.array_equal(store.read_frames(store.write_frames("c", frames)), frames)


def test_import_reads_videos_and_frame_folders(toy: Path, tmp_path: Path):
    import cv2

    clips = load_test_clips(toy)
    made = tmp_path / "made"
    made.mkdir()
    # 5-frame clip as an mp4 of 7 frames (resampled to 5); 9-frame clip as PNG frames; 17-frame clip missing.
    encode_video(np.zeros((7, 32, 48, 3), np.uint8), made / f"{clips[0].clip_id}.mp4", fps=25.0)
    folder = made / clips[1].clip_id
    folder.mkdir()
    for index in range(9):
        cv2.imwrite(str(folder / f"frame{index}.png"), np.full((16, 24, 3), index * 20, np.uint8))
    summary = import_outputs("kling", made, toy, tmp_path / "run")
    assert (summary.generated, summary.missing) == (2, 1)
    store = FrameStore(tmp_path / "run")
    first = store.read_record(clips[0].clip_id)
    assert first.native_num_frames == 7 and first.resampled and first.source == "import"
    second = store.read_frames(store.read_record(clips[1].clip_id).frames_path)
    assert second.shape == (9, 32, 48, 3)  # resized to the clip
    assert [int(f.mean()) for f in second] == [i * 20 for i in range(9)]  # natural order: frame2 < frame10
    assert store.read_record(clips[2].clip_id).status == "missing"


def test_score_writes_per_clip_and_summary_tables(toy: Path, tmp_path: Path):
    BenchRunner(config(toy, tmp_path / "run", model="linear")).run()
    outputs = score_run(tmp_path / "run", ["endpoint_psnr", "temporal_flickering"], device="cpu")
    clips = pq.read_table(outputs.clips_path).to_pylist()
    assert len(clips) == 3 and {"model", "clip_id", "endpoint_psnr", "temporal_flickering"} <= set(clips[0])
    summary = pq.read_table(outputs.summary_path).to_pylist()
    groups = {(row["metric"], row["group"]) for row in summary}
    assert ("temporal_flickering", "All") in groups and ("temporal_flickering", "9") in groups
    all_row = next(r for r in summary if r["metric"] == "temporal_flickering" and r["group"] == "All")
    assert all_row["status"] == "ok" and all_row["clips_in_test"] == 3 and all_row["model"] == "linear"


@pytest.mark.parametrize(
    "changed",
    [
        {"model_options": {"flow": "farneback"}},
        {"seed": 1},
        {"resample_mode": "linear"},
        {"store_format": "png"},
    ],
    ids=["option", "seed", "resample", "store"],
)
def test_a_rerun_with_other_settings_is_refused_or_fully_redone(toy: Path, tmp_path: Path, changed: dict):
    # The reported run: --limit 2 with flow=dis, then every clip with flow=farneback into the same --out.
    first = {"model_options": {"flow": "dis"}, "limit": 2}
    BenchRunner(config(toy, tmp_path / "run", model="flow-warp", **first)).run()
    again = {"model_options": {"flow": "dis"}} | changed
    with pytest.raises(
        ValueError, match=r"holds generate work done with other settings \(.*->.*\).*--overwrite"
    ):
        BenchRunner(config(toy, tmp_path / "run", model="flow-warp", **again)).run()
    summary = BenchRunner(
        config(toy, tmp_path / "run", model="flow-warp", overwrite=True, limit=1, **again)
    ).run()
    assert summary.generated == 1 and summary.already_done == 0
    records = FrameStore(tmp_path / "run").records()
    assert [r.clip_id for r in records] == ["vid0000_f05"]  # nothing left of the other setting
    settings = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert {key: settings[key] for key in changed} == changed | (
        {"model_options": {"flow": "dis"} | changed["model_options"]} if "model_options" in changed else {}
    )


def test_a_rerun_with_the_same_settings_resumes(toy: Path, tmp_path: Path):
    BenchRunner(
        config(toy, tmp_path / "run", model="flow-warp", limit=2, model_options={"flow": "dis"})
    ).run()
    summary = BenchRunner(
        config(toy, tmp_path / "run", model="flow-warp", model_options={"flow": "dis"})
    ).run()
    assert (summary.already_done, summary.generated) == (2, 1)


def test_a_stored_score_is_reused_only_with_the_same_metric_version_and_weights(toy, tmp_path, monkeypatch):
    from sfi_bench import scoring
    from sfi_bench.metrics import metric_class

    BenchRunner(config(toy, tmp_path / "run", model="linear")).run()
    score_run(tmp_path / "run", ["endpoint_psnr"], device="cpu")
    clip_id = load_test_clips(toy)[0].clip_id

    def stored_version() -> str:
        scores = scoring.read_scores(tmp_path / "run", FrameStore(tmp_path / "run"), [clip_id])
        return scores[clip_id].entries["endpoint_psnr"].version

    first = stored_version()
    monkeypatch.setattr(metric_class("endpoint_psnr"), "version", first + "-next")
    score_run(tmp_path / "run", ["endpoint_psnr"], device="cpu")  # recomputed, not kept beside the old
    assert stored_version() == first + "-next"

    # Weights: the fingerprint carries each loaded file's digest, so another checkpoint is another value.
    weights = tmp_path / "w.bin"
    metric = metric_class("endpoint_psnr")()
    monkeypatch.setattr(type(metric), "weights", ("some-net",))
    monkeypatch.setattr("sfi_core.weights.resolve", lambda name, folder=None: weights)
    weights.write_bytes(b"one checkpoint")
    one = scoring.metric_fingerprint(metric, None)
    weights.write_bytes(b"another checkpoint")
    assert scoring.metric_fingerprint(metric, None) != one and one.startswith(first + "-next some-net=")


def test_the_run_s_records_are_the_driver_s_ledger_and_a_copy_resumes(toy: Path, tmp_path: Path):
    """The per-clip records are the generate stage's part files (one ledger, as the data chain's): a
    `cp -r` copy (file times reset) resumes with nothing redone, and a legacy meta/ run is adopted."""
    import shutil

    from sfi_core.driver import recorded_settings

    run = tmp_path / "run"
    BenchRunner(config(toy, run, model="flow-warp", model_options={"flow": "dis"})).run()
    parts = sorted((run / "work" / "generate").glob("part-*.parquet"))
    assert parts and not (run / "meta").exists()
    assert recorded_settings(run, "generate")["model_options"] == {"flow": "dis"}
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, copy_function=shutil.copyfile)  # contents only: every mtime is new
    again = BenchRunner(config(toy, copy, model="flow-warp", model_options={"flow": "dis"})).run()
    assert (again.already_done, again.generated) == (3, 0)
    # A run made before the ledger: records in meta/{clip_id}.json, settings in run.json.
    legacy = tmp_path / "legacy"
    shutil.copytree(run, legacy)
    (legacy / "meta").mkdir()
    for record in FrameStore(run).records():
        (legacy / "meta" / f"{record.clip_id}.json").write_text(json.dumps(record.__dict__))
    shutil.rmtree(legacy / "work")
    resumed = BenchRunner(config(toy, legacy, model="flow-warp", model_options={"flow": "dis"})).run()
    assert (resumed.already_done, resumed.generated) == (3, 0)
    with pytest.raises(ValueError, match=r"model_options.flow: \"dis\" -> \"farneback\""):
        BenchRunner(config(toy, legacy, model="flow-warp", model_options={"flow": "farneback"})).run()


def test_overwrite_redoes_this_slice_only_and_keeps_the_other_slices_records(toy: Path, tmp_path: Path):
    """`--shard 0/2 --overwrite` regenerates its own clips; the other array task's stay finished."""
    from sfi_bench.generate import ParallelConfig

    run = tmp_path / "run"
    for index in (0, 1):
        BenchRunner(config(toy, run, parallel=ParallelConfig(shard=f"{index}/2"))).run()
    before = {r.clip_id: r for r in FrameStore(run).records()}
    again = BenchRunner(config(toy, run, overwrite=True, parallel=ParallelConfig(shard="0/2"))).run()
    after = {r.clip_id: r for r in FrameStore(run).records()}
    mine = {c.clip_id for c in load_test_clips(toy)[0::2]}
    assert set(after) == set(before) and again.generated == len(mine) and again.already_done == 0
    assert all(after[c] == before[c] for c in set(before) - mine)  # the other slice's records untouched
