"""The stage contract (`setup()` once per worker, then `run(rows)` yields rows) and Chain, stages back to back."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Iterator

log = logging.getLogger(__name__)

# The reason_code of a row that records an exception the stage did not expect (sfi_core.schemas).
UNEXPECTED = "unexpected_error"


class Stage:
    """A small class with one job. Subclasses implement `process_row` (or override `run` to batch).

    `key` names the input column that identifies a unit of work; the executor uses it to skip
    finished work on a rerun. A row the stage cannot handle must still come out, with its reason.
    """

    name: str = "stage"
    key: str = "video_id"
    # Inputs per shard (the unit of work and of resume) unless the run says otherwise.
    shard_size: int = 8
    # Resources one worker of this stage asks of Ray.
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    # True: asking for num_gpus on a cluster without them is an error, not a quiet run on CPUs (the
    # benchmark's model workers); False: the curation scorers fall back to CPU.
    gpus_required: bool = False
    # True: each worker holds a model replica (the benchmark's models and metric networks). Asking
    # for no GPU, it is sized by the machine, not by one CPU (sfi_core.executors.ray.pool_size): one
    # replica per GPU where the cluster has GPUs, else one per node with all of that node's CPUs.
    replica: bool = False

    def settings(self) -> dict:
        """The settings that shape this stage's output (and the weights behind it, by checksum).

        The driver records them next to the part files and refuses to resume with different ones;
        leave out what only changes speed (device, batch size, workers).
        """
        return {}

    def setup(self) -> None:
        """Load models and other heavy state; called once per worker before the first `run`."""

    def process_row(self, row: dict) -> list[dict]:
        raise NotImplementedError

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        """Rows recording that `row` failed unexpectedly; subclasses shape them to their schema."""
        raise NotImplementedError

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        for row in rows:
            try:
                out = self.process_row(row)
            except Exception as error:  # noqa: BLE001 - one bad input must not stop the corpus
                log.warning(
                    "%s failed on %s: %s\n%s", self.name, row.get(self.key), error, traceback.format_exc()
                )
                out = self.error_rows(row, error)
            yield from out


def describe_error(error: BaseException) -> str:
    text = str(error).strip() or repr(error)
    return f"{type(error).__name__}: {text}"


class Chain(Stage):
    def __init__(self, stages: list[Stage], key: str = "video_id") -> None:
        self.stages = stages
        self.key = key
        self.name = "+".join(stage.name for stage in stages)
        self.num_cpus = max(stage.num_cpus for stage in stages)
        self.num_gpus = max(stage.num_gpus for stage in stages)
        self.shard_size = min(stage.shard_size for stage in stages)

    def settings(self) -> dict:
        settings = {stage.name: stage.settings() for stage in self.stages}
        return {name: value for name, value in settings.items() if value}

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        for stage in self.stages:
            rows = stage.run(rows)
        yield from rows
