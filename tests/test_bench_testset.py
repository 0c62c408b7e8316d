"""The test set comes through sfi_core.clips: captions.parquet beside clips.parquet becomes the prompts."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sfi_bench.generate import BenchRunConfig, run_model
from sfi_bench.storage import FrameStore
from sfi_bench.testset import load_test_clips
from sfi_core.clips import read_clip_manifest
from sfi_core.dataset import load_manifest_rows
from sfi_data.testing.toy_dataset import build_toy_dataset


def test_run_on_clips_parquet_gets_the_captions_beside_it(tmp_path: Path):
    build_toy_dataset(tmp_path / "data", num_videos=1, scales=(5, 9), width=48, height=32)
    clips = tmp_path / "data" / "clips.parquet"
    ids = pq.read_table(clips).column("clip_id").to_pylist()
    captions = pa.table(
        {
            "clip_id": ids,
            "status": ["ok", "error"],
            "caption": ["a texture slides left", "half-written"],
        }
    )
    pq.write_table(captions, tmp_path / "data" / "captions.parquet")
    prompts = {c.clip_id: c.prompt for c in load_test_clips(clips)}
    assert prompts == {ids[0]: "a texture slides left", ids[1]: ""}  # failed captions are not prompts
    run_model(BenchRunConfig(model="linear", clips=clips, out=tmp_path / "run", device="cpu"))
    assert FrameStore(tmp_path / "run").read_record(ids[0]).prompt == "a texture slides left"
    # The training dataset reads the same manifest the same way.
    assert [row["caption"] for row in load_manifest_rows(clips)] == ["a texture slides left", None]


def test_paths_resolve_against_the_dataset_folder(tmp_path: Path):
    build_toy_dataset(tmp_path / "data", num_videos=1, scales=(5,), width=48, height=32)
    clips = tmp_path / "data" / "clips.parquet"
    raw = read_clip_manifest(clips)[0]
    resolved = read_clip_manifest(clips, resolve=True)[0]
    assert not Path(raw["clip_path"]).is_absolute()
    assert Path(resolved["clip_path"]) == tmp_path / "data" / raw["clip_path"]
    assert Path(resolved["first_frame_path"]).is_file()
