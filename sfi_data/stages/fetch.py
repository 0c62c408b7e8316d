"""Fetch: the CPU half of scoring, each kept video's first and last frame decoded ahead of the scorer.

On a streamed filter (sfi_core.executors.streaming) probe, meta filter and this stage run in CPU tasks
while the scorer actors run the networks; the frames travel in the row under FRAMES, which the score
stage takes out (they are no manifest column). The frames go as decoded, at the source's size: each
scorer resizes in its own way (CLIP's bicubic crop to 224, the flow's area resize to its working size,
the colour histogram none), so resizing here would change the scores the manifest records.
"""

from __future__ import annotations

from pathlib import Path

from sfi_core.constants import STATUS_OK, STATUS_REJECTED
from sfi_core.inputs import fetch_first_last, meta_reject, resolve_source
from sfi_core.schemas import FRAMES
from sfi_core.stage import Stage
from sfi_core.video import VideoError, read_frames
from sfi_core.video.fetch import FramesPastEnd
from sfi_data.config import MetaFilterConfig


class FirstLastFetchStage(Stage):
    """Attach FRAMES to each kept row; a row whose frames cannot be read goes on without them.

    The score stage then fetches that row itself and records why it failed, exactly as an unstreamed
    run does, so a broken video costs a second attempt but never a different manifest row.

    The frame count is settled here, where the last frame is read. Probe takes a container's count
    where its packets agree (sfi_core.video.frame_count); a container that still over-counts (its
    last frame does not decode) is found when that frame is read: the decode that found it counted
    the frames, so the row takes that count (frame_count_source "decode") and passes the meta filter
    again with it. The rows the meta filter rejected have their last frame read for this alone, so
    no verdict and no recorded count rests on a count that does not decode.
    """

    name = "fetch"

    def __init__(self, root: Path, reader: str, meta: MetaFilterConfig | None = None) -> None:
        self.root = Path(root)
        self.reader = reader
        self.meta = meta or MetaFilterConfig()

    def settings(self) -> dict:
        # Nothing of its own: it reads with the score stage's reader and recounts by the meta filter's
        # thresholds, and those two stages record them (in the same chain's settings).
        return {}

    def process_row(self, row: dict) -> list[dict]:
        if row["status"] == STATUS_REJECTED and row.get("stage") == "meta" and self.countable(row):
            row = self.recount_if_short(row, [row["num_frames"] - 1])
        if row["status"] != STATUS_OK:
            return [row]
        for attempt in range(2):
            try:
                return [row | {FRAMES: fetch_first_last(row, self.root, self.reader)}]
            except FramesPastEnd as short:
                if attempt or not self.countable(row) or not 0 < short.decodable < row["num_frames"]:
                    return [row]
                row = self.recounted(row, short.decodable)
                if row["status"] != STATUS_OK:
                    return [row]
            except VideoError:
                return [row]
        return [row]

    @staticmethod
    def countable(row: dict) -> bool:
        """A whole file whose count was not decoded (a virtual segment's range comes from its scenes)."""
        return row.get("segment_start") is None and row.get("frame_count_source") != "decode"

    def recount_if_short(self, row: dict, indices: list[int]) -> dict:
        """The row, recounted if its frames at `indices` lie past the last frame that decodes."""
        try:
            read_frames(resolve_source(row, self.root), indices, reader=self.reader)
        except FramesPastEnd as short:
            if 0 < short.decodable < row["num_frames"]:
                return self.recounted(row, short.decodable)
        except VideoError:
            pass  # unreadable: the verdict stands, and the frames are never needed
        return row

    def recounted(self, row: dict, decodable: int) -> dict:
        """The row with the decoded frame count and the meta filter's verdict on it."""
        row = row | {"num_frames": decodable, "frame_count_source": "decode"}
        verdict = meta_reject(row["fps"], decodable, self.meta)
        if verdict:
            code, reason = verdict
            return row | {"status": STATUS_REJECTED, "stage": "meta", "reason": reason, "reason_code": code}
        return row | {"status": STATUS_OK, "stage": None, "reason": None, "reason_code": None}

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        return [row]  # as for a VideoError: the score stage tries again and records the reason
