"""Meta filter (section 3.3.1): keep FPS <= 30 and f_max <= frame count <= 4 * f_max."""

from __future__ import annotations

from sfi_core.schemas import STATUS_OK, STATUS_REJECTED
from sfi_core.stage import Stage, describe_error
from sfi_data.config import MetaFilterConfig


def meta_reject_reason(fps: float, num_frames: int, config: MetaFilterConfig) -> str | None:
    """The reason a video fails the meta filter, or None when it passes."""
    if fps > config.max_fps:
        return f"fps {fps:.3f} > {config.max_fps:g}"
    if num_frames < config.min_frames:
        return f"{num_frames} frames < {config.min_frames} (f_max)"
    if num_frames > config.max_frames:
        return f"{num_frames} frames > {config.max_frames} (4 x f_max)"
    return None


class MetaFilterStage(Stage):
    name = "meta"

    def __init__(self, config: MetaFilterConfig | None = None) -> None:
        self.config = config or MetaFilterConfig()

    def process_row(self, row: dict) -> list[dict]:
        if row["status"] != STATUS_OK:
            return [row]
        reason = meta_reject_reason(row["fps"], row["num_frames"], self.config)
        if reason:
            row = row | {"status": STATUS_REJECTED, "stage": "meta", "reason": reason}
        return [row]

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        return [row | {"status": "error", "stage": "meta", "reason": describe_error(error)}]
