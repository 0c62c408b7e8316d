"""What the data chain's stages share about an input video: where a row's file lies, why an input
cannot be read (reason codes), the meta filter's verdict, and its first and last frame.

Stages import these from here, never from one another.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sfi_core.video import VideoError, read_frames

# VideoError messages of sfi_core.video that mean "this is no video at all" (the rest of a probe
# failure is a video whose rate or frame count cannot be read).
NOT_A_VIDEO_PREFIXES = ("not a readable video container", "no video stream")


def resolve_source(row: dict, root: Path) -> Path:
    """The file a videos-manifest row points at (its path is relative to the dataset root)."""
    return Path(os.path.normpath(Path(root) / row["path"]))


def unreadable_code(path: Path) -> str:
    """The reason code of a path that check_readable refused."""
    return "unreadable_file" if path.exists() or path.is_symlink() else "file_not_found"


def probe_error_code(error: VideoError) -> str:
    """The reason code of a failed probe of a readable file (an error may carry its own `code`)."""
    code = getattr(error, "code", None)
    if code:
        return code
    return "not_a_video" if str(error).startswith(NOT_A_VIDEO_PREFIXES) else "probe_failed"


def meta_reject(fps: float, num_frames: int, config) -> tuple[str, str] | None:
    """(reason_code, reason) of a video that fails the meta filter, or None when it passes.

    `config` holds max_fps, min_frames and max_frames (sfi_data.config.MetaFilterConfig).
    """
    if fps > config.max_fps:
        return "fps_too_high", f"fps {fps:.3f} > {config.max_fps:g}"
    if num_frames < config.min_frames:
        return "too_few_frames", f"{num_frames} frames < {config.min_frames} (f_max)"
    if num_frames > config.max_frames:
        return "too_many_frames", f"{num_frames} frames > {config.max_frames} (4 x f_max)"
    return None


def fetch_first_last(row: dict, root: Path, reader: str) -> tuple[np.ndarray, np.ndarray]:
    """The first and last frame of a probed row (of its segment, for a virtual segment), uint8 RGB."""
    last = row["num_frames"] - 1
    offset = row.get("segment_start") or 0
    frames = read_frames(resolve_source(row, root), [0, last], offset=offset, reader=reader)
    return frames[0], frames[1]
