"""VBench temporal flickering: (255 − mean |f_i − f_{i+1}|) / 255 over all consecutive frames, no resize.

VBench 0.1.5 (`cal_score`) averages per-pair means; every pair of a clip has the same size, so that is
the sum of |differences| over all pairs divided by the number of differences. Pairs are taken one at a
time with OpenCV's L1 norm (SIMD, no copy): a 1,323-frame 720p clip never becomes a 7 GB int16 array.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric


def mean_abs_frame_difference(frames: Iterable[np.ndarray]) -> float:
    """Mean over consecutive pairs of the mean absolute pixel difference (uint8 frames, any channel order)."""
    import cv2

    previous: np.ndarray | None = None
    total, pairs = 0.0, 0
    for frame in frames:
        if previous is not None:
            if frame.shape != previous.shape:
                raise ValueError(
                    f"temporal flickering needs equal frame sizes, got {previous.shape} and {frame.shape}"
                )
            # The L1 norm of two uint8 images is an exact integer sum (< 2^53 for any real frame size).
            total += cv2.norm(previous, frame, cv2.NORM_L1)
            pairs += 1
        previous = frame
    if pairs == 0:
        raise ValueError(f"temporal flickering needs at least 2 frames, got {0 if previous is None else 1}")
    return total / (pairs * previous.size)


def temporal_flickering_score(frames: Iterable[np.ndarray]) -> float:
    return (255.0 - mean_abs_frame_difference(frames)) / 255.0


def decoded_frames(path: Path) -> Iterator[np.ndarray]:
    """Decode a video frame by frame (uint8 RGB), holding two frames at a time, not the clip."""
    from sfi_core.video import decoded, frame_converter, open_container, video_stream

    with open_container(Path(path)) as container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        to_rgb = frame_converter("temporal_flickering")
        for frame in decoded(container, stream):
            yield to_rgb.reformat(frame, format="rgb24").to_ndarray()


def temporal_flickering_of_video(path: Path) -> float:
    """TF of a video file with our own decode, streaming: what `cal_score(path)` gives, in one pass."""
    return temporal_flickering_score(decoded_frames(path))


class TemporalFlickering(MeanMetric):
    name = "temporal_flickering"
    cap = 1.0
    label_text = "TF"
    direction = "higher"
    version = "vbench-0.1.5 (all frames, native size)"
    group = "Video Quality"

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        return temporal_flickering_score(sample.generated), 1.0
