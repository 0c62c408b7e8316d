"""The test set: clips of a manifest (through sfi_core.clips), their condition frames and ground truth.

Also fits frames to a clip (length and size), which generation, import and scoring all need, and
picks one shard of the clips (`--shard I/N`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfi_bench.models.resample import resample_frames
from sfi_core.clip_checks import require_clips_beside
from sfi_core.clips import read_clip_manifest


@dataclass
class TestClip:
    """One row of the test manifest, paths made absolute."""

    __test__ = False  # not a pytest class

    clip_id: str
    num_frames: int
    width: int | None
    height: int | None
    fps: float
    clip_path: Path | None
    first_frame_path: Path | None
    last_frame_path: Path | None
    prompt: str = ""
    video_id: str | None = None


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def load_test_clips(manifest: Path, frame_counts: set[int] | None = None) -> list[TestClip]:
    """Clips with status ok from any CLIPS-schema parquet; captions (column or captions.parquet) are prompts."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"test manifest {manifest} not found. Make one with `sfi-data split --out DIR` (DIR/test.parquet)."
        )
    clips = []
    for row in read_clip_manifest(manifest, resolve=True):
        num_frames = int(row["num_frames"])
        if frame_counts and num_frames not in frame_counts:
            continue
        clips.append(
            TestClip(
                clip_id=str(row["clip_id"]),
                num_frames=num_frames,
                width=row.get("width"),
                height=row.get("height"),
                fps=float(row.get("fps") or 25.0),
                clip_path=_path(row.get("clip_path")),
                first_frame_path=_path(row.get("first_frame_path")),
                last_frame_path=_path(row.get("last_frame_path")),
                prompt=row.get("caption") or "",
                video_id=row.get("video_id"),
            )
        )
    require_clips_beside(manifest, [c.clip_path or c.first_frame_path for c in clips])
    if len({c.clip_id for c in clips}) != len(clips):
        raise ValueError(f"{manifest}: clip_id values are not unique")
    return clips


@dataclass(frozen=True)
class ShardSpec:
    """Shard `index` of `count` (0-based) of the test clips."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> ShardSpec:
        """`I/N` as SLURM arrays give it (`--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`)."""
        if not text:
            return cls()
        index, sep, count = text.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError(f"--shard takes I/N (e.g. 0/4), got {text!r}")
        spec = cls(int(index), int(count))
        if spec.count < 1 or not 0 <= spec.index < spec.count:
            raise ValueError(f"--shard {text}: I must be in 0..N-1 and N >= 1")
        return spec

    def select(self, clips: list[TestClip]) -> list[TestClip]:
        """Every count-th clip of each frame count (so shards get equal work), in manifest order."""
        # sorted() is stable: within one frame count the manifest order is kept.
        by_length = sorted(range(len(clips)), key=lambda i: clips[i].num_frames)
        mine = set(by_length[self.index :: self.count])
        return [clip for i, clip in enumerate(clips) if i in mine]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"could not read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_conditions(clip: TestClip) -> tuple[np.ndarray, np.ndarray]:
    """The lossless PNG endpoints; the clip's own first/last frames where the manifest has no PNGs."""
    if (
        clip.first_frame_path
        and clip.last_frame_path
        and clip.first_frame_path.is_file()
        and clip.last_frame_path.is_file()
    ):
        return read_image(clip.first_frame_path), read_image(clip.last_frame_path)
    if clip.clip_path is None or not clip.clip_path.is_file():
        raise FileNotFoundError(f"clip {clip.clip_id}: neither condition PNGs nor the clip file exist")
    from sfi_core.video import read_frames

    frames = read_frames(clip.clip_path, [0, clip.num_frames - 1])
    return frames[0], frames[1]


def read_ground_truth(clip: TestClip) -> np.ndarray | None:
    if clip.clip_path is None or not clip.clip_path.is_file():
        return None
    from sfi_core.video import decode_all

    return decode_all(clip.clip_path)


@dataclass
class Fitted:
    frames: np.ndarray
    native_num_frames: int
    resampled: bool
    resized_from: str | None


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    shrink = frames.shape[1] * frames.shape[2] > height * width
    mode = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in frames])


def fit_to_clip(frames: np.ndarray, num_frames: int, height: int, width: int, resample_mode: str) -> Fitted:
    """Resample in time to N (endpoints kept) and resize to the clip's size, saying what was done."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"a model must return (N, H, W, 3) frames, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"a model must return uint8 frames, got {frames.dtype}")
    native = len(frames)
    resampled = native != num_frames
    if resampled:
        frames = resample_frames(frames, num_frames, resample_mode)
    resized_from = None
    if frames.shape[1:3] != (height, width):
        resized_from = f"{frames.shape[2]}x{frames.shape[1]}"
        frames = resize_frames(frames, height, width)
    return Fitted(np.ascontiguousarray(frames), native, resampled, resized_from)
