"""The report's media: frame strips (JPEG) and looping previews (H.264 MP4, far smaller than GIF).

Both are for looking only (metrics read the lossless frames), so both are lossy: a PNG strip of a
480p clip takes ~160 KB, the JPEG ~27 KB, which keeps a 600-clip report under 200 MB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STRIP_FRAMES = 8
THUMB_HEIGHT = 72
PREVIEW_WIDTH = 192
# Quality of the preview videos: x264's CRF (visually fine at 192 px; metrics never read previews).
PREVIEW_CRF = 28
PREVIEW_SUFFIX = ".mp4"
STRIP_SUFFIX = ".jpg"
STRIP_JPEG_QUALITY = 85


def thumb(frame: np.ndarray, height: int) -> np.ndarray:
    import cv2

    width = max(1, round(frame.shape[1] * height / frame.shape[0]))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def write_strip(
    frames: np.ndarray, path: Path, count: int = STRIP_FRAMES, height: int = THUMB_HEIGHT
) -> None:
    """`count` evenly spaced frames (first and last included) side by side, 2 px gaps."""
    import cv2

    indices = np.unique(np.rint(np.linspace(0, len(frames) - 1, min(count, len(frames)))).astype(int))
    thumbs = [thumb(frames[i], height) for i in indices]
    gap = np.full((height, 2, 3), 255, np.uint8)
    parts = [part for image in thumbs for part in (image, gap)][:-1]
    strip = cv2.cvtColor(np.concatenate(parts, axis=1), cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), strip, [cv2.IMWRITE_JPEG_QUALITY, STRIP_JPEG_QUALITY]):
        raise OSError(f"could not write {path}")


def write_preview(frames: np.ndarray, path: Path, fps: float, width: int = PREVIEW_WIDTH) -> None:
    """An H.264 MP4 (yuv420p, even size: what every browser plays) of the frames scaled to `width`."""
    import cv2

    from sfi_core.video import encode_video, even_size

    new_w, new_h = even_size(width, max(2, round(frames.shape[1] * width / frames.shape[2])))
    small = np.stack([cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_AREA) for f in frames])
    # Browsers need a few frames to start a loop; a 5-frame clip is shown at its own rate all the same.
    encode_video(small, path, fps or 25.0, codec="libx264", crf=PREVIEW_CRF, preset="veryfast", threads=1)
