"""Chain: several stages run back to back over the same rows, as one stage (one shard, one part file)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sfi_data.stages.base import Stage


class Chain(Stage):
    def __init__(self, stages: list[Stage], key: str = "video_id") -> None:
        self.stages = stages
        self.key = key
        self.name = "+".join(stage.name for stage in stages)
        self.num_cpus = max(stage.num_cpus for stage in stages)
        self.num_gpus = max(stage.num_gpus for stage in stages)

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        for stage in self.stages:
            rows = stage.run(rows)
        yield from rows
