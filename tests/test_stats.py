"""The dataset card: Markdown plus PNG plots, for complete and for partial datasets."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from sfi_core.manifest import write_rows
from sfi_core.schemas import CAPTIONS, CLIPS, STATUS_ERROR, STATUS_OK, VIDEOS, empty_row
from sfi_data.split import SplitConfig, run_split
from sfi_data.stats import CARD_NAME, write_card
from sfi_data.testing.toy_dataset import build_toy_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _with_thresholds(root):
    videos = pq.read_table(root / "videos.parquet").to_pylist()
    for row in videos:
        row.update(
            similarity_low=0.65, similarity_high=0.92, flow_low=4.0, flow_high=28.0, threshold_mode="q"
        )
    videos.append(
        empty_row(VIDEOS)
        | {
            "video_id": "bad",
            "source": "bad.mp4",
            "status": STATUS_ERROR,
            "stage": "probe",
            "reason": "not a readable video container (x)",
        }
    )
    write_rows(videos, VIDEOS, root / "videos.parquet")


def test_full_card(tmp_path):
    clips = build_toy_dataset(tmp_path, num_videos=4, scales=(5, 9), write_media=True)
    _with_thresholds(tmp_path)
    write_rows(
        [
            empty_row(CAPTIONS)
            | {
                "clip_id": c["clip_id"],
                "video_id": c["video_id"],
                "num_frames": c["num_frames"],
                "status": STATUS_OK,
                "caption": f"a red ball rolls {i}",
                "model": "m",
                "prompt_version": "v1",
                "total_tokens": 100 + i,
                "latency_s": 0.5,
            }
            for i, c in enumerate(clips)
        ],
        CAPTIONS,
        tmp_path / "captions.parquet",
    )
    run_split(tmp_path, SplitConfig(num_videos=1, scales=(5, 9)))
    card = write_card(tmp_path)
    assert card == tmp_path / CARD_NAME
    text = card.read_text()
    for name in ("scores", "scales", "video_meta", "rejects", "captions", "samples"):
        png = tmp_path / "stats" / f"{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC, name
        assert f"](stats/{name}.png)" in text
    assert "| input videos | 6 |" in text  # 4 kept + 1 rejected + 1 unreadable
    assert "| SFIBench test clips / videos | 2 / 1 |" in text
    assert "| 5 | 4 | 4 | 1 | 3 |" in text  # frames, clips, captioned, test, train
    assert "video rejected: fps #" in text and "video error: not a readable video container (x)" in text
    assert "similarity in [0.65, 0.92], flow in [4, 28]" in text
    assert "> a red ball rolls 0" in text


def test_card_before_captions_and_split(tmp_path):
    build_toy_dataset(tmp_path, num_videos=2, scales=(5,), write_media=False)
    text = write_card(tmp_path).read_text()
    assert "## Clips per scale" in text and "## Captions" not in text and "SFIBench test clips" not in text
    assert not (tmp_path / "stats" / "samples.png").exists()  # no PNG frames on disk to show


def test_clip_rejects_are_counted(tmp_path):
    build_toy_dataset(tmp_path, num_videos=1, scales=(5,), write_media=False)
    clips = pq.read_table(tmp_path / "clips.parquet").to_pylist()
    clips.append(
        empty_row(CLIPS)
        | {
            "clip_id": "x",
            "video_id": "vid0000",
            "num_frames": 9,
            "status": "rejected",
            "reason": "hard cut: frame diff 80.1 > 60",
        }
    )
    write_rows(clips, CLIPS, tmp_path / "clips.parquet")
    text = write_card(tmp_path, with_plots=False).read_text()
    assert "| clip rejected: hard cut: frame diff # > # | 1 |" in text


def test_missing_manifests_say_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="sfi-data filter"):
        write_card(tmp_path)
