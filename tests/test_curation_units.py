"""Unit tests of the curation core: discover, probe, meta filter, thresholds, centred ranges, readers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sfi_core.constants import FRAME_COUNTS
from sfi_core.video import VideoError, decode_all, encode_video, probe, read_frames
from sfi_data.config import MetaFilterConfig, RangeConfig, ThresholdConfig
from sfi_data.discover import discover, expand_inputs, video_id_for
from sfi_data.stages.cut import centred_range, max_consecutive_diff
from sfi_data.stages.meta_filter import meta_reject, meta_reject_reason
from sfi_data.stages.thresholds import apply_thresholds, resolve_bounds, small_corpus_warning
from sfi_data.synthetic import moving_texture_frames, write_variable_rate_video, write_video


def test_frame_count_set_is_the_papers():
    assert FRAME_COUNTS == (5, 9, 17, 33, 65, 81)


@pytest.mark.parametrize("num_frames", [81, 82, 100, 161, 324])
@pytest.mark.parametrize("clip_frames", FRAME_COUNTS)
def test_centred_range_has_exact_length_and_shared_centre(num_frames, clip_frames):
    start, end = centred_range(num_frames, clip_frames)
    assert end - start + 1 == clip_frames
    assert 0 <= start and end <= num_frames - 1
    # Centred on floor(f/2), s//2 frames each side (paper eq. 3 with the documented rounding).
    assert start == num_frames // 2 - clip_frames // 2
    assert (start + end) // 2 == num_frames // 2


def test_centred_range_rejects_a_clip_longer_than_the_video():
    with pytest.raises(ValueError, match="does not fit"):
        centred_range(50, 81)


def test_meta_filter_bounds_are_inclusive():
    config = MetaFilterConfig()
    assert meta_reject_reason(30.0, 81, config) is None
    assert meta_reject_reason(30.0, 324, config) is None
    assert "fps" in meta_reject_reason(30.01, 100, config)
    assert "< 81" in meta_reject_reason(24.0, 80, config)
    assert "> 324" in meta_reject_reason(24.0, 325, config)
    assert meta_reject(30.01, 100, config)[0] == "fps_too_high"
    assert meta_reject(24.0, 80, config)[0] == "too_few_frames"
    assert meta_reject(24.0, 325, config)[0] == "too_many_frames"


def test_quantile_and_explicit_bounds():
    values = list(np.linspace(0, 1, 101))
    bounds = resolve_bounds(values, RangeConfig(low_quantile=0.1, high_quantile=0.9))
    assert bounds.low == pytest.approx(0.1) and bounds.high == pytest.approx(0.9)
    explicit = resolve_bounds(values, RangeConfig(low=0.2, high_quantile=0.5))
    assert explicit.low == 0.2 and explicit.high == pytest.approx(0.5)
    assert "low=explicit" in explicit.mode and "high=q0.5" in explicit.mode


def test_apply_thresholds_records_bounds_and_rejects_outside():
    rows = [
        {"status": "ok", "similarity": s, "flow_score": f} for s, f in [(0.5, 10), (0.95, 10), (0.5, 100)]
    ]
    rows.append({"status": "error", "similarity": None, "flow_score": None})
    apply_thresholds(
        rows, ThresholdConfig(similarity=RangeConfig(high=0.9), flow=RangeConfig(low=1, high=50))
    )
    assert [r["status"] for r in rows] == ["ok", "rejected", "rejected", "error"]
    assert "similarity 0.95 > high threshold 0.9" in rows[1]["reason"]
    assert "flow score 100 > high threshold 50" in rows[2]["reason"]
    assert [r.get("reason_code") for r in rows[1:3]] == ["similarity_high", "flow_high"]
    assert all(r["similarity_high"] == 0.9 and r["flow_low"] == 1 for r in rows)
    assert all(r["threshold_warning"] is None for r in rows)  # explicit bounds: nothing to warn about


@pytest.mark.parametrize(("videos", "warned"), [(9, True), (49, True), (50, False)])
def test_quantiles_of_a_small_corpus_carry_a_warning(videos, warned):
    rows = [{"status": "ok", "similarity": i / videos, "flow_score": 5.0} for i in range(videos)]
    bounds = apply_thresholds(
        rows,
        ThresholdConfig(similarity=RangeConfig(low_quantile=0.05, high_quantile=0.95), flow=RangeConfig()),
    )
    warning = small_corpus_warning(bounds)
    assert (warning is not None) == warned
    assert all(r["threshold_warning"] == warning for r in rows)
    if warned:
        assert f"only {videos} scored videos" in warning and "--sim-low/--sim-high" in warning
        assert "flow" not in warning.split(":")[0]  # the flow range is explicit/open: not named


def test_reason_codes_are_documented_and_stable():
    from sfi_core.schemas import CLIPS, REASON_CODES, SEGMENTS, VIDEOS

    for schema in (VIDEOS, CLIPS, SEGMENTS):
        assert schema.names.index("reason_code") == schema.names.index("reason") + 1
    # Codes the summaries, the card and downstream tools group by: renaming one breaks them.
    assert {
        "fps_too_high",
        "too_few_frames",
        "too_many_frames",
        "similarity_low",
        "similarity_high",
        "flow_low",
        "flow_high",
        "decode_failed",
        "not_a_video",
        "hard_cut",
    } <= set(REASON_CODES)


def test_discover_recurses_globs_and_lists_with_stable_ids(tmp_path):
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    for name in ["a.mp4", "sub/b.mkv", "notes.txt"]:
        (raw / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\nraw/a.mp4\nraw/sub/b.mkv\n")
    from_dir = expand_inputs([str(raw)])
    assert [Path(p).name for p in from_dir] == ["a.mp4", "b.mkv"]
    assert [Path(p).name for p in expand_inputs([str(raw / "**" / "*.mkv")])] == ["b.mkv"]
    assert [Path(p).name for p in expand_inputs([str(listing)])] == ["a.mp4", "b.mkv"]
    rows = discover([str(raw), str(listing)], tmp_path / "out")
    assert len(rows) == 2  # duplicates across inputs collapse
    assert rows[0]["video_id"] == video_id_for(raw / "a.mp4") and rows[0]["video_id"].startswith("a-")
    assert rows[0]["path"] == os.path.join("..", "raw", "a.mp4")


def test_probe_reads_container_facts(make_video):
    path = make_video("p.mp4", 90, fps=25, width=128, height=96)
    info = probe(path)
    assert (info.fps, info.num_frames, info.width, info.height) == (25.0, 90, 128, 96)
    assert info.codec == "h264" and info.frame_count_source == "container"
    assert info.duration_s == pytest.approx(3.6, abs=0.05)


def test_probe_counts_packets_where_the_container_has_no_count(tmp_path):
    path = write_video(tmp_path / "v.mkv", moving_texture_frames(37, 64, 48), fps=24)
    info = probe(path)
    assert info.num_frames == 37 and info.frame_count_source == "packets"
    assert probe(path, verify="decode").frame_count_source == "decode"


@pytest.mark.parametrize("reader", ["pyav", "decord", "auto"])
def test_readers_return_the_frames_at_the_asked_indices(make_video, reader):
    path = make_video("r.mp4", 60, dx=3)
    truth = decode_all(path)
    indices = [59, 0, 30, 31, 7]
    frames = read_frames(path, indices, reader=reader)
    for got, idx in zip(frames, indices, strict=True):
        np.testing.assert_array_equal(got, truth[idx])


@pytest.mark.parametrize("reader", ["pyav", "decord"])
def test_readers_index_a_variable_rate_video_by_position(tmp_path, reader):
    frames = moving_texture_frames(60, 64, 48, dx=3)
    path = write_variable_rate_video(tmp_path / "vfr.mp4", frames, [33] * 20 + [66] * 20 + [33] * 20)
    truth = decode_all(path)
    assert probe(path).num_frames == len(truth) == 60
    indices = [59, 0, 30, 31, 45, 10]
    np.testing.assert_array_equal(read_frames(path, indices, reader=reader), truth[indices])


@pytest.mark.parametrize(
    ("name", "codec"),
    [("v.mkv", "libx264"), ("v.mov", "libx264"), ("v.avi", "mpeg4"), ("v.webm", "libvpx-vp9")],
)
def test_pyav_reader_is_exact_in_other_containers(tmp_path, name, codec):
    path = tmp_path / name
    encode_video(moving_texture_frames(40, 64, 48, dx=2), path, 25, codec=codec, extra={"g": "12"})
    truth = decode_all(path)
    indices = [0, 39, 20, 21, 5]
    np.testing.assert_array_equal(read_frames(path, indices), truth[indices])


def test_pyav_reader_finds_the_first_frame_of_an_mpeg_ts(tmp_path):
    # Seeking an MPEG-TS to its start time lands past the first keyframe: the reader must notice.
    path = tmp_path / "v.ts"
    encode_video(
        moving_texture_frames(60, 96, 64, dx=2),
        path,
        25,
        crf=18,
        extra={"g": "12"},
        container_format="mpegts",
    )
    truth = decode_all(path)
    indices = [0, 1, 59, 25]
    np.testing.assert_array_equal(read_frames(path, indices), truth[indices])


def _read_in_child(path: Path) -> None:
    read_frames(path, [0, 5])
    decode_all(path)


def test_a_forked_child_converts_frames_after_its_parent(make_video):
    # Frame converters are cached per thread; a fork (DataLoader workers) must not inherit them.
    import multiprocessing

    path = make_video("f.mp4", 12)
    read_frames(path, [0, 5])
    decode_all(path)
    child = multiprocessing.get_context("fork").Process(target=_read_in_child, args=(path,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung converting frames")
    assert child.exitcode == 0


def test_read_frames_with_offset_addresses_a_segment(make_video):
    path = make_video("s.mp4", 40)
    truth = decode_all(path)
    np.testing.assert_array_equal(read_frames(path, [0, 4], offset=10)[1], truth[14])


def test_read_frames_past_the_end_is_a_clear_error(make_video):
    path = make_video("e.mp4", 20)
    with pytest.raises(VideoError, match="could not decode frame"):
        read_frames(path, [25])


def test_hard_cut_check_separates_motion_from_cuts():
    smooth = moving_texture_frames(10, 128, 96, dx=2)
    cut = np.concatenate([smooth[:5], moving_texture_frames(5, 128, 96, dx=2, seed=9)])
    assert max_consecutive_diff(smooth) < 20
    assert max_consecutive_diff(cut) > max_consecutive_diff(smooth) * 3


def test_atomic_outputs_get_normal_permissions(tmp_path):
    from sfi_core.manifest import atomic_path

    target = tmp_path / "x.parquet"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"data")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert not list(tmp_path.glob("*.tmp"))


def test_manifest_schema_docs_are_current():
    from sfi_core.schemas import manifests_markdown

    readme = Path(__file__).parent.parent / "manifests" / "README.md"
    assert readme.read_text(encoding="utf-8") == manifests_markdown(), (
        "run: python -m sfi_core.schemas > manifests/README.md"
    )


def test_example_manifests_match_the_schemas():
    import pyarrow.parquet as pq

    from sfi_core.schemas import CLIPS, VIDEOS

    example = Path(__file__).parent.parent / "manifests" / "example"
    assert pq.read_schema(example / "videos.parquet").names == VIDEOS.names
    assert pq.read_schema(example / "clips.parquet").names == CLIPS.names
    videos = pq.read_table(example / "videos.parquet").to_pylist()
    assert {"ok", "rejected", "error"} <= {v["status"] for v in videos}
    assert all(v["reason"] for v in videos if v["status"] != "ok")


def test_freed_heap_pages_are_handed_back_at_most_twice_a_second(monkeypatch):
    import platform

    import sfi_core.memory as memory

    calls: list[int] = []
    monkeypatch.setattr(memory, "_trim", lambda pad: calls.append(pad) or 1)
    monkeypatch.setattr(memory, "_last", 0.0)
    assert memory.release_freed_memory() is True
    assert memory.release_freed_memory() is False  # within MIN_INTERVAL_S of the last
    assert memory.release_freed_memory(force=True) is True
    assert calls == [0, 0]
    if platform.libc_ver()[0] == "glibc":
        monkeypatch.setattr(memory, "_trim", None)  # the real glibc call
        assert memory.release_freed_memory(force=True) is True
