"""The sample sheet's frames as a Stage: first, middle and last frame of a few clips, decoded with the recorded reader.

Decoding runs through the shared driver like every other step (DIR/work/samples/ part files, errors
kept with their reason), so the card costs no decoding on a rerun and says which clips it could not show.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.manifest_table import merge_parts
from sfi_core.schemas import empty_row
from sfi_core.stage import Stage, describe_error
from sfi_core.video import VideoError
from sfi_data.stats.tables import DatasetTables

log = logging.getLogger(__name__)

THUMB_SIDE = 320  # longest side of a frame kept for the sheet, px
POSITIONS = ("first", "middle", "last")

# One row per sampled clip: its three frames (uint8 RGB, raw bytes) or why they could not be read.
SAMPLES = pa.schema(
    [
        pa.field("schema_version", pa.string()),
        pa.field("clip_id", pa.string()),
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("reason_code", pa.string()),
        pa.field("reader", pa.string()),  # the reader that decoded them (pyav where decord refused)
        pa.field("height", pa.int32()),
        pa.field("width", pa.int32()),
        pa.field("frames", pa.binary()),
    ]
)


def _thumbnails(frames: np.ndarray) -> np.ndarray:
    import cv2

    height, width = frames.shape[1:3]
    scale = min(1.0, THUMB_SIDE / max(height, width))
    if scale == 1.0:
        return frames
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])


class SampleFramesStage(Stage):
    name = "samples"
    key = "clip_id"

    def __init__(self, root: Path, reader: str) -> None:
        self.root = Path(root)
        self.reader = reader

    def settings(self) -> dict:
        return {"reader": self.reader, "positions": list(POSITIONS), "thumb_side": THUMB_SIDE}

    def _row(self, row: dict) -> dict:
        return empty_row(SAMPLES) | {"clip_id": row["clip_id"]}

    def _read(self, path: Path, indices: list[int]) -> tuple[np.ndarray, str]:
        from sfi_core.video import read_frames

        try:
            return read_frames(path, indices, reader=self.reader), self.reader
        except VideoError:
            if self.reader == "pyav":
                raise
            # A sheet to look at, not training data: the exact reader shows what decord refuses.
            return read_frames(path, indices, reader="pyav"), "pyav"

    def process_row(self, row: dict) -> list[dict]:
        last = int(row["num_frames"]) - 1
        try:
            frames, reader = self._read(self.root / row["clip_path"], [0, last // 2, last])
        except (VideoError, OSError, ValueError) as error:
            reason = f"could not read {row['clip_path']}: {error}"
            return [
                self._row(row) | {"status": STATUS_ERROR, "reason": reason, "reason_code": "decode_failed"}
            ]
        thumbs = np.ascontiguousarray(_thumbnails(frames))
        height, width = thumbs.shape[1:3]
        return [
            self._row(row)
            | {
                "status": STATUS_OK,
                "reader": reader,
                "height": height,
                "width": width,
                "frames": thumbs.tobytes(),
            }
        ]

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        reason = describe_error(error)
        return [
            self._row(row) | {"status": STATUS_ERROR, "reason": reason, "reason_code": "unexpected_error"}
        ]


def sample_frames(tables: DatasetTables, count: int, reader: str) -> list[tuple[str, np.ndarray]]:
    """(clip_id, first/middle/last frames) of up to `count` clips of the longest scale.

    A few spare clips are decoded too, so a clip that cannot be read is replaced rather than shown empty.
    """
    from sfi_core.driver import run_stage
    from sfi_data.config import RunConfig
    from sfi_data.config_dataset import settings_changed

    clips = [c for c in tables.clips if c["status"] == STATUS_OK and c.get("clip_path")]
    if not clips or count < 1:
        return []
    longest = max(int(c["num_frames"]) for c in clips)
    rows = [c for c in clips if int(c["num_frames"]) == longest][: count + 4]
    stage = SampleFramesStage(tables.root, reader)
    # A handful of frames in one shard: in this process, not the default executor (a Ray start would
    # cost more than the decode); the card's command takes no executor options.
    run = RunConfig(executor="local", shard_size=len(rows), overwrite=settings_changed(tables.root, stage))
    run_stage(stage, rows, tables.root, SAMPLES, run)
    merged = merge_parts(tables.root / "work" / stage.name, SAMPLES, "clip_id", [r["clip_id"] for r in rows])
    samples = []
    for row in merged:
        if row["status"] != STATUS_OK:
            log.warning("stats: sample sheet leaves out %s: %s", row["clip_id"], row["reason"])
            continue
        shape = (len(POSITIONS), row["height"], row["width"], 3)
        samples.append((row["clip_id"], np.frombuffer(row["frames"], dtype=np.uint8).reshape(shape)))
    return samples[:count]
