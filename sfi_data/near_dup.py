"""Near-duplicate sources: a 64-bit DCT perceptual hash of a few frames per video, and the groups it finds.

Re-encodes, resizes and mild crops of one footage keep the low frequencies of every frame, so their
hashes differ by a few bits, while unrelated footage differs by about half of the 64. Hashing is a
Stage (one row per video, run by the shared driver, resumable); grouping runs on the driver over the
merged hashes, every frame against every frame, as matrix products.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.schemas import SCHEMA_VERSION, empty_row
from sfi_core.stage import Stage, describe_error
from sfi_core.video import VideoError

HASH_BITS = 64
HASH_SIDE = 32  # frames are shrunk to 32x32 before the DCT, whatever their size (resizes hash alike)

# One row per video whose frames were hashed (DIR/work/phash/ parts), errors kept with their reason.
FRAME_HASHES = pa.schema(
    [
        pa.field("schema_version", pa.string()),
        pa.field("video_id", pa.string()),
        pa.field("clip_id", pa.string()),  # the clip whose frames were hashed (the video's longest)
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("reason_code", pa.string()),
        pa.field("frame_hashes", pa.list_(pa.uint64())),
    ]
)


def dct_hash(frame: np.ndarray) -> int:
    """The 64-bit pHash of one uint8 RGB (or grey) frame: the signs of its 8x8 lowest DCT frequencies
    against their median (the DC term left out of the median, as it only says how bright the frame is)."""
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    small = cv2.resize(grey, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between uint64 hashes (broadcast), with no dependence on numpy's bitwise_count."""
    xor = np.bitwise_xor(a, b).astype(np.uint64)
    return np.unpackbits(xor.reshape(*xor.shape, 1).view(np.uint8), axis=-1).sum(axis=-1)


def _sign_bits(hashes: np.ndarray) -> np.ndarray:
    """uint64 hashes (M,) -> (M, 64) float32 of +-1, so that Hamming distance = (64 - a . b) / 2."""
    bits = np.unpackbits(hashes.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    return bits.astype(np.float32) * 2 - 1


def near_pairs(
    hashes: dict[str, np.ndarray], max_distance: int, chunk_cells: int = 1 << 24
) -> set[tuple[str, str]]:
    """Pairs of videos in which most frames of each have a frame of the other within `max_distance` bits.

    Frames are compared all against all (so two cuts of one footage a few frames apart still match),
    exactly, as one matrix product per chunk of frames; the cost grows with the square of the frame
    count (2,000 videos x 5 frames: about 3 s on 2 busy cores).
    """
    ids = sorted(video for video, values in hashes.items() if len(values))
    if len(ids) < 2:
        return set()
    counts = np.array([len(hashes[video]) for video in ids])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    owner = np.repeat(np.arange(len(ids)), counts)
    signs = _sign_bits(np.concatenate([np.asarray(hashes[video], dtype=np.uint64) for video in ids]))
    # partners[a, b]: frames of video a with a near frame in video b (rows of a, kept sparse by majority).
    majority: dict[tuple[int, int], int] = {}
    # Rows per chunk so one chunk's distance matrix stays near `chunk_cells` cells (64 MiB of float32).
    chunk_rows = max(1, chunk_cells // len(signs))
    for row in range(0, len(signs), chunk_rows):
        distance = (HASH_BITS - signs[row : row + chunk_rows] @ signs.T) / 2
        near_video = np.logical_or.reduceat(distance <= max_distance + 0.5, starts, axis=1)
        for frame, videos in zip(range(row, row + len(distance)), near_video, strict=True):
            for other in np.flatnonzero(videos):
                if other != owner[frame]:
                    key = (int(owner[frame]), int(other))
                    majority[key] = majority.get(key, 0) + 1
    return {
        (ids[a], ids[b])
        for (a, b), found in majority.items()
        if a < b and found * 2 > counts[a] and majority.get((b, a), 0) * 2 > counts[b]
    }


class _Groups:
    """Union-find over video ids; a group is named by its smallest member (stable across runs)."""

    def __init__(self, members: Iterable[str]) -> None:
        self.parent = {member: member for member in members}

    def find(self, item: str) -> str:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def group_videos(
    videos: Iterable[str],
    same_source: dict[str, str],
    hashes: dict[str, np.ndarray],
    max_distance: int,
) -> tuple[dict[str, str], list[list[str]]]:
    """video_id -> group, joining segments of one source file and near-duplicate footage.

    Returns the mapping and the near-duplicate groups found by the hashes (two or more videos each).
    """
    videos = sorted(set(videos))
    groups = _Groups(videos)
    by_source: dict[str, str] = {}
    for video in videos:
        source = same_source.get(video, video)
        if source in by_source:
            groups.union(by_source[source], video)
        by_source.setdefault(source, video)
    near = _Groups(videos)
    for a, b in sorted(near_pairs({v: h for v, h in hashes.items() if v in groups.parent}, max_distance)):
        groups.union(a, b)
        near.union(a, b)
    members: dict[str, list[str]] = defaultdict(list)
    for video in videos:
        members[near.find(video)].append(video)
    found = sorted(group for group in members.values() if len(group) > 1)
    return {video: groups.find(video) for video in videos}, found


class FrameHashStage(Stage):
    """Hashes `frames` evenly spaced frames of each video's longest clip (rows: video_id, clip_id, ...)."""

    name = "phash"
    key = "video_id"
    shard_size = 32

    def __init__(self, root: Path, frames: int, reader: str) -> None:
        self.root = Path(root)
        self.frames = frames
        self.reader = reader

    def settings(self) -> dict:
        return {"hash": f"dct-{HASH_BITS}bit-{HASH_SIDE}px", "frames": self.frames, "reader": self.reader}

    def _row(self, row: dict) -> dict:
        return empty_row(FRAME_HASHES) | {"video_id": row["video_id"], "clip_id": row["clip_id"]}

    def process_row(self, row: dict) -> list[dict]:
        from sfi_core.video import read_frames

        count = int(row["num_frames"])
        indices = sorted({int(round(x)) for x in np.linspace(0, count - 1, min(self.frames, count))})
        try:
            frames = read_frames(self.root / row["clip_path"], indices, reader=self.reader)
        except (VideoError, OSError, ValueError) as error:
            reason = f"could not read frames of {row['clip_path']}: {error}"
            return [
                self._row(row) | {"status": STATUS_ERROR, "reason": reason, "reason_code": "decode_failed"}
            ]
        hashes = [dct_hash(frame) for frame in frames]
        return [
            self._row(row) | {"status": STATUS_OK, "frame_hashes": hashes, "schema_version": SCHEMA_VERSION}
        ]

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        reason = describe_error(error)
        return [
            self._row(row) | {"status": STATUS_ERROR, "reason": reason, "reason_code": "unexpected_error"}
        ]
