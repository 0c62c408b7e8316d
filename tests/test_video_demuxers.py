"""Every PyAV demuxer our readers start is finished or closed before the file is.

PyAV's demux generator dropped part-way without close() keeps its packet buffer (native memory, not
seen by tracemalloc): 0.3 KB per file, megabytes over a filter run (docs/performance.md). Here each
real container is wrapped so that every demux generator it hands out is tracked.
"""

from __future__ import annotations

import pytest

import sfi_core.video as video
import sfi_core.video.container as video_container
import sfi_core.video.fetch as video_fetch
import sfi_core.video.probing as video_probe
from sfi_core.video import decode_all, encode_video, probe, read_frames
from sfi_data.synthetic import moving_texture_frames, write_variable_rate_video


class TrackedDemuxer:
    def __init__(self, packets) -> None:
        self.packets, self.finished, self.closed = packets, False, False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self.packets)
        except StopIteration:
            self.finished = True
            raise

    def close(self) -> None:
        self.closed = True
        self.packets.close()


class TrackedContainer:
    def __init__(self, container, demuxers: list[TrackedDemuxer]) -> None:
        self._container, self._demuxers = container, demuxers

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        left = [d for d in self._demuxers if not (d.finished or d.closed)]
        assert not left, f"{len(left)} demuxer(s) left open when the container closed"
        return self._container.__exit__(*exc)

    def demux(self, *args, **kwargs):
        self._demuxers.append(TrackedDemuxer(self._container.demux(*args, **kwargs)))
        return self._demuxers[-1]

    def decode(self, *args, **kwargs):  # PyAV's own decode demuxes inside, out of our reach
        raise AssertionError("container.decode leaves its demuxer open when the loop stops early")


@pytest.fixture
def demuxers(monkeypatch) -> list[TrackedDemuxer]:
    started: list[TrackedDemuxer] = []
    real_open = video.open_container

    def tracked_open(path, fast=False):
        return TrackedContainer(real_open(path, fast), started)

    # Every module of sfi_core.video that opens containers looks the name up in its own namespace.
    for module in (video_container, video_probe, video_fetch):
        monkeypatch.setattr(module, "open_container", tracked_open)
    return started


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demux")
    frames = moving_texture_frames(40, 64, 48, dx=1.0, seed=3)
    mp4 = folder / "a.mp4"
    encode_video(frames, mp4, 24.0, preset="ultrafast", extra={"g": "12", "bf": "2"})
    avi = folder / "a.avi"
    encode_video(frames, avi, 24.0, codec="mpeg4", pix_fmt="yuv420p", crf=None, preset=None)
    vfr = write_variable_rate_video(folder / "vfr.mp4", frames[:12], [40, 40, 80] * 4)
    return {"mp4": mp4, "avi": avi, "vfr": vfr, "frames": frames}


@pytest.mark.parametrize("name", ["mp4", "avi", "vfr"])
def test_frame_reads_close_every_demuxer_they_leave_early(videos, demuxers, name):
    path = videos[name]
    count = probe(path).num_frames
    first_last = read_frames(path, [0, count - 1])  # seeks, stops each run early, checks for holes
    assert first_last.shape[0] == 2
    read_frames(path, list(range(2, min(count, 9))))  # one run, drained early
    assert probe(path, verify="decode").num_frames == count  # counts every frame
    assert len(decode_all(path)) == count
    assert demuxers and all(d.finished or d.closed for d in demuxers)
    assert any(d.closed and not d.finished for d in demuxers)  # some loops did stop early


def test_a_sequential_read_stops_early_and_closes_its_demuxer(videos, demuxers):
    found, decoded = video_fetch._sequential_frames(videos["mp4"], [0, 5])
    assert sorted(found) == [0, 5] and decoded == 6
    assert demuxers[-1].closed and not demuxers[-1].finished
