"""Meta filter (section 3.3.1): keep FPS <= 30 and f_max <= frame count <= 4 * f_max."""

from __future__ import annotations

from sfi_core.constants import STATUS_ERROR, STATUS_OK, STATUS_REJECTED
from sfi_core.inputs import meta_reject
from sfi_core.stage import UNEXPECTED, Stage, describe_error
from sfi_data.config import MetaFilterConfig, to_dict


def meta_reject_reason(fps: float, num_frames: int, config: MetaFilterConfig) -> str | None:
    """The human reason a video fails the meta filter, or None when it passes."""
    verdict = meta_reject(fps, num_frames, config)
    return verdict[1] if verdict else None


class MetaFilterStage(Stage):
    name = "meta"

    def __init__(self, config: MetaFilterConfig | None = None) -> None:
        self.config = config or MetaFilterConfig()

    def settings(self) -> dict:
        return to_dict(self.config)

    def process_row(self, row: dict) -> list[dict]:
        if row["status"] != STATUS_OK:
            return [row]
        verdict = meta_reject(row["fps"], row["num_frames"], self.config)
        if verdict:
            code, reason = verdict
            row = row | {"status": STATUS_REJECTED, "stage": "meta", "reason": reason, "reason_code": code}
        return [row]

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        return [
            row
            | {
                "status": STATUS_ERROR,
                "stage": "meta",
                "reason": describe_error(error),
                "reason_code": UNEXPECTED,
            }
        ]
