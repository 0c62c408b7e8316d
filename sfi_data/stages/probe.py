"""Probe: container facts for each input (fps, exact frame count, size, rotation, codec...)."""

from __future__ import annotations

from pathlib import Path

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.inputs import probe_error_code, resolve_source, unreadable_code  # noqa: F401 - re-exported
from sfi_core.schemas import VIDEOS, empty_row
from sfi_core.stage import UNEXPECTED, Stage, describe_error
from sfi_core.video import VideoError, check_readable, probe
from sfi_data.config import ProbeConfig


class ProbeStage(Stage):
    name = "probe"

    def __init__(self, root: Path, config: ProbeConfig | None = None) -> None:
        self.root = Path(root)
        self.config = config or ProbeConfig()

    def settings(self) -> dict:
        return {"verify_frame_count": self.config.verify_frame_count}

    def _base(self, row: dict) -> dict:
        out = empty_row(VIDEOS)
        out.update({k: row.get(k) for k in ("video_id", "source", "path", "segment_start", "segment_end")})
        return out

    def process_row(self, row: dict) -> list[dict]:
        out = self._base(row)
        path = resolve_source(row, self.root)
        try:
            out["file_size_bytes"] = check_readable(path)
        except VideoError as error:
            out.update(
                status=STATUS_ERROR, stage="probe", reason=str(error), reason_code=unreadable_code(path)
            )
            return [out]
        try:
            info = probe(path, self.config.verify_frame_count)
        except VideoError as error:
            out.update(
                status=STATUS_ERROR, stage="probe", reason=str(error), reason_code=probe_error_code(error)
            )
            return [out]
        out.update(
            status=STATUS_OK,
            fps=info.fps,
            num_frames=info.num_frames,
            frame_count_source=info.frame_count_source,
            width=info.width,
            height=info.height,
            rotation=info.rotation,
            duration_s=info.duration_s,
            codec=info.codec,
            pix_fmt=info.pix_fmt,
        )
        if row.get("segment_start") is not None:
            # A virtual segment: the probe describes the source file; the row describes the segment.
            start, end = int(row["segment_start"]), int(row["segment_end"])
            if not 0 <= start < end <= info.num_frames:
                out.update(
                    status=STATUS_ERROR,
                    stage="probe",
                    reason=f"segment [{start}, {end}) lies outside the source's {info.num_frames} frames",
                    reason_code="segment_out_of_range",
                )
                return [out]
            out.update(num_frames=end - start, duration_s=(end - start) / info.fps)
        return [out]

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        out = self._base(row)
        out.update(status=STATUS_ERROR, stage="probe", reason=describe_error(error), reason_code=UNEXPECTED)
        return [out]
