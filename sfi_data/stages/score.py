"""Score: CLIP (or weight-free) similarity and flow magnitude between each video's first and last frame."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.inputs import fetch_first_last
from sfi_core.schemas import FRAMES
from sfi_core.stage import UNEXPECTED, Stage, describe_error
from sfi_core.video import VideoError
from sfi_data.config import ScoreConfig
from sfi_data.scoring import PairScorer


class FirstLastScoreStage(Stage):
    """Batches the rows it is given: frames are fetched per video, networks run per batch."""

    name = "score"

    def __init__(self, root: Path, config: ScoreConfig, weights_dir: str | None = None) -> None:
        self.root = Path(root)
        self.config = config
        self.scorer = PairScorer(config, weights_dir)

    def settings(self) -> dict:
        return self.scorer.settings()

    def setup(self) -> None:
        self.scorer.setup()

    def _fetch(self, row: dict):
        # A streamed filter's fetch stage decoded them ahead (sfi_data.stages.fetch); else, or when that
        # failed, they are read here, where a failure is recorded.
        return row.pop(FRAMES, None) or fetch_first_last(row, self.root, self.config.reader)

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        rows = list(rows)
        pairs, scored = [], []
        for row in rows:
            if row["status"] != STATUS_OK:
                continue
            try:
                pairs.append(self._fetch(row))
                scored.append(row)
            except Exception as error:  # noqa: BLE001 - one bad input must not stop the corpus
                decode = isinstance(error, VideoError)
                row.update(
                    status=STATUS_ERROR,
                    stage="score",
                    reason=f"first/last frame: {error if decode else describe_error(error)}",
                    reason_code="decode_failed" if decode else UNEXPECTED,
                )
        for row, result in zip(scored, self._score_isolating_failures(pairs), strict=True):
            if isinstance(result, BaseException):
                row.update(
                    status=STATUS_ERROR,
                    stage="score",
                    reason=describe_error(result),
                    reason_code="score_failed",
                )
            else:
                row.update(similarity=result[0], flow_score=result[1])
        for row in rows:
            if row["status"] == STATUS_OK or row.get("similarity") is not None:
                row.update(
                    similarity_backend=self.scorer.similarity_name,
                    flow_backend=self.scorer.flow_name,
                    flow_work_size=self.scorer.flow_work_size,
                )
            yield row

    def _score_isolating_failures(self, pairs: list) -> list:
        """Score the batch; if the batch fails, score pair by pair so one bad pair fails alone."""
        if not pairs:
            return []
        try:
            return self.scorer.score(pairs)
        except Exception:  # noqa: BLE001 - retried per pair below, where the failure is recorded
            results: list = []
            for pair in pairs:
                try:
                    results += self.scorer.score([pair])
                except Exception as error:  # noqa: BLE001 - recorded as this video's reason
                    results.append(error)
            return results

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        return [
            row
            | {
                "status": STATUS_ERROR,
                "stage": "score",
                "reason": describe_error(error),
                "reason_code": UNEXPECTED,
            }
        ]
