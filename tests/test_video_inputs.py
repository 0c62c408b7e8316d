"""Inputs as users have them: folders of mixed files, and files FFmpeg says odd things about."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sfi_core.video import VideoError, read_frames
from sfi_data.discover import expand_inputs, skipped_note
from sfi_data.synthetic import moving_texture_frames, write_video


def test_a_folder_scan_takes_every_video_and_counts_what_it_leaves(tmp_path):
    frames = moving_texture_frames(12, 64, 48)
    write_video(tmp_path / "a.mp4", frames, fps=24)
    write_video(tmp_path / "b.mkv", frames, fps=24)
    (tmp_path / "b.mkv").rename(tmp_path / "camera.dump")  # video under an unknown extension
    (tmp_path / "c.ogv").write_bytes((tmp_path / "a.mp4").read_bytes())  # any name FFmpeg reads
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "meta.json").write_text("{}\n")
    (tmp_path / "README").write_text("a text file without an extension\n")
    import cv2

    (tmp_path / "still.bin").write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    skipped: Counter = Counter()
    found = sorted(p.rsplit("/", 1)[1] for p in expand_inputs([str(tmp_path)], skipped=skipped))
    assert found == ["a.mp4", "c.ogv", "camera.dump"]
    assert skipped == {".txt": 1, ".json": 1, "(no extension)": 1, ".bin": 1}
    assert (
        skipped_note(skipped)
        == "skipped 4 files that are not video: (no extension) 1, .bin 1, .json 1, .txt 1"
    )
    assert skipped_note(Counter()) is None


def test_any_ffmpeg_or_os_error_while_reading_is_the_inputs_failure(tmp_path, monkeypatch):
    # Matroska with non-monotonic DTS made container.seek(0) raise av.error.PermissionError (EPERM),
    # which the CLI took for an output folder it could not write; it is the input's VideoError.
    import av

    from sfi_core.video import fetch as video_fetch

    path = tmp_path / "v.mp4"
    write_video(path, moving_texture_frames(12, 64, 48), fps=24)

    def refused(*args):
        raise av.error.PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(video_fetch, "read_frames_pyav", refused)
    with pytest.raises(VideoError, match="could not read frames .PermissionError"):
        read_frames(str(path), [0])
