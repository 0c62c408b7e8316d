"""The dataset card: Markdown plus PNG plots, for complete and for partial datasets."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.manifest import write_rows
from sfi_core.schemas import CAPTIONS, CLIPS, VIDEOS, empty_row
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
            "reason_code": "not_a_video",
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
    # Rejects are grouped by code, each with one human reason as its example.
    assert "| video rejected: fps_too_high | 1 | fps 60.0 > 30.0 |" in text
    assert "| video error: not_a_video | 1 | not a readable video container (x) |" in text
    assert "similarity in [0.65, 0.92], flow in [4, 28]" in text
    assert "> a red ball rolls 0" in text
    assert "## Split" in text and "No near-duplicate footage found." in text
    # The split's hashing recorded its settings; the card shows them.
    assert "| phash | `frames` | 5 |" in text and "| phash | `reader` | pyav |" in text


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
            "reason_code": "hard_cut",
        }
    )
    write_rows(clips, CLIPS, tmp_path / "clips.parquet")
    text = write_card(tmp_path, with_plots=False).read_text()
    assert "| clip rejected: hard_cut | 1 | hard cut: frame diff 80.1 > 60 |" in text
    # A manifest from before the reason_code column: its reasons are grouped with numbers masked.
    old = pq.read_table(tmp_path / "clips.parquet")
    pq.write_table(old.drop_columns(["reason_code"]), tmp_path / "clips.parquet")
    text = write_card(tmp_path, with_plots=False).read_text()
    assert "| clip rejected: hard cut: frame diff # > # | 1 |" in text


def test_missing_manifests_say_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="sfi-data filter"):
        write_card(tmp_path)


SAMPLE_SHEETS = """
import sys
from pathlib import Path

import av
import numpy as np

from sfi_core.video import read_frames

root = Path(sys.argv[1])
probe = root / "probe.mp4"
with av.open(str(probe), "w") as container:  # PyAV alone: no OpenCV loaded before decord
    stream = container.add_stream("libx264", rate=24)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.codec_context.max_b_frames = 0  # decord refuses streams with B-frames
    for value in (0, 128, 255):
        image = np.full((48, 64, 3), value, np.uint8)
        container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
    container.mux(stream.encode(None))
assert "cv2" not in sys.modules  # decord loads first, as in a run whose first read is decord's
read_frames(probe, [0, 2], reader="decord")

import matplotlib.image

from sfi_data.config_dataset import StatsConfig
from sfi_data.stats import write_card
from sfi_data.stats.plots import plot_samples
from sfi_data.stats.tables import DatasetTables
from sfi_data.testing.toy_dataset import build_toy_dataset

build_toy_dataset(root / "ds", num_videos=2, scales=(5, 9))  # PNG condition frames, written by OpenCV
sheet_path = root / "ds" / "stats" / "samples.png"
write_card(root / "ds", config=StatsConfig(reader="decord", samples=2))  # the whole card once
for reader in ("decord", "auto", "pyav"):
    if reader != "decord":  # the other readers: the sample sheet alone (the plot that decodes)
        sheet_path.unlink()
        plot_samples(DatasetTables.load(root / "ds"), sheet_path.parent, 2, reader)
    sheet = matplotlib.image.imread(sheet_path)
    print(reader, float(sheet[..., :3].std()))
import cv2  # the benchmark reads the PNG condition frames with OpenCV, after decord in the same process

first = next((root / "ds" / "clips").rglob("*_first.png"))
assert cv2.imread(str(first)) is not None, "OpenCV cannot read PNGs once decord is loaded"
"""


@pytest.mark.slow
def test_sample_sheet_with_every_reader(tmp_path):
    """Issue 15.7: decord bundles an old zlib; loaded before OpenCV, it broke OpenCV's PNG writes."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", SAMPLE_SHEETS, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "libpng error" not in done.stderr
    spreads = dict(line.split() for line in done.stdout.splitlines())
    assert sorted(spreads) == ["auto", "decord", "pyav"]
    # A sheet of textured frames has spread; a blank one (all background) has next to none.
    assert all(float(spread) > 0.05 for spread in spreads.values()), spreads


def test_cli_and_a_mistyped_reader(tmp_path):
    import typer
    from click.testing import CliRunner

    from sfi_data.app import app
    from sfi_data.commands import stats as _stats  # noqa: F401 - registers the command

    build_toy_dataset(tmp_path, num_videos=1, scales=(5,), write_media=False)
    group = typer.main.get_group(app)
    outcome = CliRunner().invoke(group, ["stats", "--out", str(tmp_path), "--no-plots"])
    assert outcome.exit_code == 0, outcome.output
    assert (tmp_path / CARD_NAME).is_file() and not (tmp_path / "stats").exists()
    outcome = CliRunner().invoke(group, ["stats", "--out", str(tmp_path), "--reader", "decrod"])
    assert outcome.exit_code == 2 and "did you mean 'decord'" in outcome.output
    assert "Traceback" not in outcome.output


def test_sample_frames_stage_replaces_an_unreadable_clip_and_keeps_its_reason(tmp_path):
    from sfi_core.manifest_table import merge_parts
    from sfi_data.stats.samples import SAMPLES, sample_frames
    from sfi_data.stats.tables import DatasetTables

    clips = build_toy_dataset(tmp_path, num_videos=3, scales=(5, 9))
    longest = [c for c in clips if c["num_frames"] == 9]
    (tmp_path / longest[0]["clip_path"]).write_bytes(b"not a video")
    samples = sample_frames(DatasetTables.load(tmp_path), 2, "pyav")
    assert [clip_id for clip_id, _ in samples] == [c["clip_id"] for c in longest[1:]]
    assert all(frames.shape == (3, 48, 64, 3) and frames.std() > 5 for _, frames in samples)
    rows = {r["clip_id"]: r for r in merge_parts(tmp_path / "work" / "samples", SAMPLES, "clip_id")}
    failed = rows[longest[0]["clip_id"]]
    assert failed["status"] == "error" and failed["reason_code"] == "decode_failed"
    assert longest[0]["clip_path"] in failed["reason"]


def test_command_in_a_real_process(tmp_path):
    """One smoke test of the installed `sfi-data stats` entry point (the rest run in-process)."""
    import subprocess
    import sys
    from pathlib import Path

    build_toy_dataset(tmp_path, num_videos=1, scales=(5,), write_media=False)
    command = Path(sys.executable).parent / "sfi-data"
    done = subprocess.run(
        [str(command), "stats", "--out", str(tmp_path), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "dataset card:" in done.stdout + done.stderr and (tmp_path / CARD_NAME).is_file()
