"""`sfi-data export`: WebDataset shards and the 🤗 datasets folder, read back by `webdataset`, `datasets`
and our own reader; deterministic, resumable after `kill -9`, and trained on by `sfi-bench train`."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sfi_core.config import ExecutionConfig
from sfi_core.shards import expand_braces, index_shard, sample_key, shard_paths
from sfi_data.config_dataset import ExportConfig
from sfi_data.export import run_export
from sfi_data.testing.fake_vllm import FakeVLLMServer

PIPELINES = Path(__file__).parents[1] / "pipelines"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The shipped demo pipeline (filter -> ... -> stats) on a small corpus of real-encoded clips."""
    from sfi_data.run_pipeline import run_pipeline
    from sfi_data.synthetic import moving_texture_frames, write_video

    inputs = tmp_path_factory.mktemp("inputs")
    for i, dx in enumerate((1.0, 2.0, 3.0, 1.5)):
        write_video(inputs / f"v{i}.mp4", moving_texture_frames(90, 64, 48, dx=dx, seed=i), fps=24.0)
    spec = yaml.safe_load((PIPELINES / "demo.yaml").read_text())
    spec["cut"] |= {"frame_counts": [5, 9, 17], "preset": "ultrafast"}
    spec["split"] |= {"num_videos": 1, "scales": [5, 9, 17]}
    spec["steps"] = [s for s in spec["steps"] if s != "export"]
    spec["inputs"] = [str(inputs)]
    out = tmp_path_factory.mktemp("demo") / "dataset"
    with FakeVLLMServer(max_images=16) as server:
        spec["caption"] |= {"api_bases": [server.url], "model": "fake-vllm"}
        outcomes = run_pipeline(spec, out)
    assert all(o.status == "done" for o in outcomes), outcomes
    return out


def _tree(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file but the ledger."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".sfi-export" not in p.parts
    }


def test_the_shards_round_trip_every_clip_png_and_row(demo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "shards"
    summary = run_export(demo, ExportConfig(dest=str(dest), shard_size=4))
    rows = {
        r["clip_id"]: r
        for split in ("train", "test")
        for r in pq.read_table(demo / f"{split}.parquet").to_pylist()
    }
    assert summary.samples == len(rows) and summary.failed == 0
    seen = {}
    for tar in sorted(dest.glob("*.tar")):
        for sample in index_shard(tar):
            seen[sample.row["clip_id"]] = sample
    assert set(seen) == set(rows)
    for clip_id, sample in seen.items():
        row = rows[clip_id]
        assert sample.key == sample_key(clip_id) and sample.row["split"] in sample.shard.name
        assert sample.read("mp4") == (demo / row["clip_path"]).read_bytes()
        assert sample.read("first.png") == (demo / row["first_frame_path"]).read_bytes()
        assert sample.read("last.png") == (demo / row["last_frame_path"]).read_bytes()
        for column in ("video_id", "num_frames", "fps", "width", "height", "start_frame", "end_frame",
                       "similarity", "similarity_backend", "flow_score", "flow_backend", "caption", "split",
                       "category", "category_source"):  # fmt: skip
            assert sample.row[column] == row[column], column
        assert sample.row["caption_model"] == "fake-vllm" and sample.row["caption_prompt_version"]
        assert sample.row["license"] == "unknown" and "clip_path" not in sample.row
    for split in ("train", "test"):
        index = json.loads((dest / f"{split}-index.json").read_text())
        assert index["samples"] == sum(1 for r in rows.values() if r["split"] == split)
        for shard in index["shards"]:
            data = (dest / shard["name"]).read_bytes()
            assert shard["bytes"] == len(data) and shard["sha256"] == hashlib.sha256(data).hexdigest()


def test_webdataset_and_datasets_read_the_shards_as_they_are(demo: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    wds = pytest.importorskip("webdataset")
    dest = tmp_path / "shards"
    run_export(demo, ExportConfig(dest=str(dest), shard_size=3))
    names = sorted(p.name for p in dest.glob("train-*.tar"))
    pattern = str(dest / f"train-{{000000..{len(names) - 1:06d}}}.tar")
    assert [Path(p).name for p in expand_braces(pattern)] == names
    train = {r["clip_id"]: r for r in pq.read_table(demo / "train.parquet").to_pylist()}
    samples = list(wds.WebDataset(pattern, shardshuffle=False))
    assert len(samples) == len(train)
    for sample in samples:
        row = json.loads(sample["json"])
        assert sample["mp4"] == (demo / train[row["clip_id"]]["clip_path"]).read_bytes()
        assert sample["first.png"] == (demo / train[row["clip_id"]]["first_frame_path"]).read_bytes()
    files = [str(dest / name) for name in names]
    cache = str(tmp_path / "hf-cache")  # never a cached copy of an earlier run's files
    loaded = datasets.load_dataset("webdataset", data_files={"train": files}, split="train", cache_dir=cache)
    loaded = loaded.cast_column("mp4", datasets.Video(decode=False))  # decoding would need torchcodec
    assert sorted(r["clip_id"] for r in loaded["json"]) == sorted(train)
    first = loaded[0]
    clip = train[first["json"]["clip_id"]]
    assert first["mp4"]["bytes"] == (demo / clip["clip_path"]).read_bytes()
    assert first["first.png"].size == (clip["width"], clip["height"])


def test_the_hf_folder_loads_with_both_splits_and_its_card_is_hub_metadata(
    demo: Path, tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    hub = pytest.importorskip("huggingface_hub")
    dest = tmp_path / "hf"
    (demo / "licenses.json").write_text(json.dumps({"*v0.mp4": "cc-by-4.0", "*": "cc0-1.0"}))
    try:
        run_export(demo, ExportConfig(dest=str(dest), format="hf", shard_size=4))
    finally:
        (demo / "licenses.json").unlink()
    loaded = datasets.load_dataset(str(dest), cache_dir=str(tmp_path / "hf-cache"))
    test = pq.read_table(demo / "test.parquet").to_pylist()
    train = pq.read_table(demo / "train.parquet").to_pylist()
    assert set(loaded) == {"train", "test"}
    assert loaded["test"].num_rows == len(test) and loaded["train"].num_rows == len(train)
    row = loaded["test"][0]
    match = next(r for r in test if r["clip_id"] == row["json"]["clip_id"])
    assert row["mp4"] == (demo / match["clip_path"]).read_bytes()  # bytes as cut, no video decoder needed
    assert row["json"]["category"] == match["category"] and row["json"]["caption"] == match["caption"]
    card = hub.DatasetCard.load(dest / "README.md")
    meta = card.data.to_dict()
    size_categories = json.loads(
        (Path(datasets.__file__).parent / "utils" / "resources" / "size_categories.json").read_text()
    )
    assert meta["size_categories"] == ["n<1K"] and set(meta["size_categories"]) <= set(size_categories)
    assert meta["license"] == ["cc-by-4.0", "cc0-1.0"]
    # The Hub's task id (huggingface_hub ships a task type of that name).
    assert meta["task_categories"] == ["image-to-video"]
    assert (Path(hub.__file__).parent / "inference" / "_generated" / "types" / "image_to_video.py").is_file()
    from datasets.utils.metadata import MetadataConfigs

    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert {f["split"] for f in configs["default"]["data_files"]} == {"train", "test"}
    assert "## Content categories" in card.text and (dest / "stats" / "categories.png").is_file()


def test_two_exports_are_byte_identical_and_a_rerun_writes_nothing(demo: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    run_export(demo, ExportConfig(dest=str(one), shard_size=2))
    run_export(demo, ExportConfig(dest=str(two), shard_size=2))
    assert _tree(one) == _tree(two) and len(_tree(one)) > 4
    mtimes = {p: p.stat().st_mtime_ns for p in one.glob("*.tar")}
    again = run_export(demo, ExportConfig(dest=str(one), shard_size=2))
    assert again.written == 0 and again.skipped == again.shards
    assert {p: p.stat().st_mtime_ns for p in one.glob("*.tar")} == mtimes
    gone = sorted(one.glob("train-*.tar"))[1]
    gone.unlink()  # a shard lost on disk after the run: written again, the same bytes
    fixed = run_export(demo, ExportConfig(dest=str(one), shard_size=2))
    assert fixed.written == 1 and _tree(one) == _tree(two)


def test_a_changed_dataset_or_setting_is_refused_not_mixed(demo: Path, tmp_path: Path) -> None:
    from sfi_core.driver import SettingsChangedError

    dest = tmp_path / "shards"
    run_export(demo, ExportConfig(dest=str(dest), shard_size=2))
    with pytest.raises(SettingsChangedError, match="shard_size"):
        run_export(demo, ExportConfig(dest=str(dest), shard_size=3))
    redone = run_export(demo, ExportConfig(dest=str(dest), shard_size=3, overwrite=True))
    assert redone.failed == 0 and redone.written == redone.shards
    with pytest.raises(ValueError, match="use --split all"):
        run_export(demo, ExportConfig(dest=str(tmp_path / "x"), format="hf", split="train"))
    with pytest.raises(ValueError, match="format 'parquet' is not one of webdataset, hf"):
        run_export(demo, ExportConfig(dest=str(tmp_path / "x"), format="parquet"))


def test_a_missing_clip_file_keeps_its_shard_unwritten_with_the_reason(demo: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(demo, copy)
    victim = pq.read_table(copy / "train.parquet").to_pylist()[0]
    (copy / victim["clip_path"]).unlink()
    summary = run_export(copy, ExportConfig(dest=str(tmp_path / "s"), shard_size=1))
    assert summary.failed == 1 and victim["clip_path"].split("/")[-1] in summary.reasons[0]
    assert not list((tmp_path / "s").glob("*-index.json"))  # no index over an incomplete export
    assert summary.shards - summary.failed == len(list((tmp_path / "s").glob("*.tar")))


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """A toy dataset of larger clips: an export long enough to be killed in the middle."""
    from sfi_data.config_dataset import SplitConfig
    from sfi_data.split import run_split
    from sfi_data.testing.toy_dataset import build_toy_dataset, write_toy_captions

    root = tmp_path_factory.mktemp("big")
    clips = build_toy_dataset(root, num_videos=6, scales=(5, 9, 17, 33, 65, 81), width=320, height=240)
    write_toy_captions(root, clips)
    run_split(root, SplitConfig(num_videos=1, near_duplicates=False))
    return root


def test_kill_9_mid_export_then_rerun_gives_byte_identical_shards(big: Path, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    run_export(big, ExportConfig(dest=str(clean), shard_size=1))
    total = len(list(clean.glob("*.tar")))
    dest = tmp_path / "killed"
    command = [sys.executable, "-m", "sfi_data.cli", "export", "--out", str(big), "--dest", str(dest)]
    command += ["--shard-size", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(dest.glob("*.tar")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.001)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(list(dest.glob("*.tar")))
    assert 0 < finished < total, f"killed after {finished} of {total} shards: not in the middle"
    rerun = run_export(big, ExportConfig(dest=str(dest), shard_size=1))
    # A tar renamed into place just before the kill, whose ledger row was not yet written, is written again.
    assert rerun.skipped <= finished and rerun.written == total - rerun.skipped
    assert _tree(dest) == _tree(clean)
    assert not [p for p in dest.rglob("*") if p.name.endswith(".tmp")]


def test_sfi_bench_train_reads_the_shards(demo: Path, tmp_path: Path) -> None:
    import torch
    from typer.testing import CliRunner

    from sfi_bench.app import app
    from sfi_bench.commands import train  # noqa: F401  (registers the command)
    from sfi_bench.models.semfi.tiny import save_tiny_semfi
    from sfi_core.dataset import SFIClipDataset
    from sfi_core.dataset_shards import ShardClipDataset

    dest = tmp_path / "shards"
    run_export(demo, ExportConfig(dest=str(dest), shard_size=4))
    names = sorted(p.name for p in dest.glob("train-*.tar"))
    pattern = str(dest / f"train-{{000000..{len(names) - 1:06d}}}.tar")
    folder = SFIClipDataset(demo / "train.parquet", size=(16, 16))
    shards = ShardClipDataset([pattern], size=(16, 16))
    assert sorted(shards.batch_keys) == sorted(folder.batch_keys)
    where = {row["clip_id"]: i for i, row in enumerate(folder.rows)}
    for i, row in enumerate(shards.rows):
        a, b = folder[where[row["clip_id"]]], shards[i]
        assert a["caption"] == b["caption"] and a["num_frames"] == b["num_frames"]
        assert all(torch.equal(a[k], b[k]) for k in ("frames", "first_frame", "last_frame"))
    save_tiny_semfi(tmp_path / "wan", adapters=False)
    args = ["train", pattern, "--out", str(tmp_path / "run"), "--weights", str(tmp_path / "wan")]
    args += ["--height", "16", "--width", "16", "--mixed-precision", "no", "--max-sequence-length", "8"]
    args += ["--global-batch", "1", "--max-steps", "2", "--sample-every", "0", "--warmup-steps", "1"]
    args += ["--no-gradient-checkpointing"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trained 2 steps" in " ".join(result.output.split())
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r][:2] == [1, 2]


def test_user_mistakes_end_in_one_line(demo: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import sfi_data.commands.curate  # noqa: F401  (two commands: typer then dispatches by name)
    import sfi_data.commands.export  # noqa: F401
    from sfi_data.app import app

    bare = tmp_path / "bare"
    bare.mkdir()
    result = CliRunner().invoke(
        app, ["export", "--out", str(bare), "--dest", str(tmp_path / "s")], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2
    assert "not found: run `sfi-data split --out" in " ".join(result.output.split())
    result = CliRunner().invoke(
        app, ["export", "--out", str(demo), "--dest", str(tmp_path / "s"), "--split", "val"]
    )
    assert result.exit_code == 2 and "split 'val' is not one of train, test, all" in " ".join(
        result.output.split()
    )
    with pytest.raises(FileNotFoundError, match="export them with"):
        shard_paths([str(tmp_path / "nothing-{000000..000002}.tar")])


def test_the_tar_bytes_are_those_of_python_tarfile(tmp_path: Path) -> None:
    """Our writer (kernel copy, hashing beside it) against the standard library's tarfile, on members
    of awkward sizes and a key too long for a ustar name field (a PAX extended header)."""
    import tarfile

    from sfi_data.export import write_shard

    samples = []
    for i, size in enumerate((0, 1, 511, 512, 513, 100_000)):
        key = {3: "m" * 96, 4: "k" * 150}.get(i, f"clip{i}")  # "m"*96 + ".mp4": a full 100-byte name
        files = {}
        for name in ("mp4", "first.png", "last.png"):
            path = tmp_path / f"{i}.{name}"
            path.write_bytes(os.urandom(size + len(name)))
            files[name] = str(path)
        samples.append({"key": key, "files": files, "json": json.dumps({"clip_id": key, "é": i})})
    size, sha = write_shard(tmp_path / "ours.tar", samples)
    with tarfile.open(tmp_path / "reference.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for sample in samples:
            for name in ("mp4", "first.png", "last.png", "json"):
                data = sample["json"].encode() if name == "json" else Path(sample["files"][name]).read_bytes()
                info = tarfile.TarInfo(f"{sample['key']}.{name}")
                info.size, info.mode, info.mtime, info.uname, info.gname = len(data), 0o644, 0, "", ""
                tar.addfile(info, io.BytesIO(data))
    ours, reference = (tmp_path / "ours.tar").read_bytes(), (tmp_path / "reference.tar").read_bytes()
    assert ours == reference
    assert size == len(ours) and sha == hashlib.sha256(ours).hexdigest()
    # The plan's size estimate (what --max-shard-bytes is checked against) is the tar's exact size.
    from sfi_data.export import _member_bytes, tar_bytes

    members = sum(
        _member_bytes(f"{s['key']}.{name}", Path(s["files"][name]).stat().st_size)
        for s in samples
        for name in ("mp4", "first.png", "last.png")
    ) + sum(_member_bytes(f"{s['key']}.json", len(s["json"].encode())) for s in samples)
    assert tar_bytes(members) == len(ours)


def test_a_shard_streams_through_bounded_memory(big: Path, tmp_path: Path) -> None:
    """One shard of every clip: Python's peak allocation stays far below the shard's size (the clips
    move in 1 MiB chunks, at most 4 of them wait for the hash)."""
    import tracemalloc

    run_export(big, ExportConfig(dest=str(tmp_path / "warm")))  # imports and caches, outside the count
    tracemalloc.start()
    try:
        summary = run_export(big, ExportConfig(dest=str(tmp_path / "one")))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = 8 << 20  # 4 chunks waiting + 1 in hand + the plan
    assert summary.shards == 2 and summary.bytes > 2 * bound, summary  # train and test, one shard each
    assert peak < bound, f"peak {peak / 1e6:.1f} MB while exporting {summary.bytes / 1e6:.1f} MB"


@pytest.mark.slow
def test_ray_workers_write_the_same_shards(demo: Path, tmp_path: Path) -> None:
    local, ray = tmp_path / "local", tmp_path / "ray"
    run_export(demo, ExportConfig(dest=str(local), shard_size=2))
    summary = run_export(demo, ExportConfig(dest=str(ray), shard_size=2), run=ExecutionConfig(executor="ray"))
    assert summary.failed == 0 and summary.written == summary.shards
    assert _tree(ray) == _tree(local)


def test_max_shard_bytes_bounds_every_shard(demo: Path, tmp_path: Path) -> None:
    """Shards close before --max-shard-bytes; a sample larger than the bound gets a shard of its own."""
    one = run_export(demo, ExportConfig(dest=str(tmp_path / "one"), max_shard_bytes=1 << 30))
    bound = 3 * max(p.stat().st_size for p in (tmp_path / "one").glob("*.tar")) // one.samples + 20480
    summary = run_export(demo, ExportConfig(dest=str(tmp_path / "small"), max_shard_bytes=bound))
    assert summary.shards > one.shards and summary.samples == one.samples
    for tar in (tmp_path / "small").glob("*.tar"):
        assert tar.stat().st_size <= bound or len(index_shard(tar)) == 1, tar
