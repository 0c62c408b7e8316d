"""How a global batch splits over ranks (one synchronised backward each), and the step saved with the state."""

from __future__ import annotations

import math


class StepCounter:
    """The optimizer step, saved and restored with the accelerate state (register_for_checkpointing)."""

    def __init__(self) -> None:
        self.step = 0

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


def rank_share(batch_size: int, world: int, rank: int, micro_batch: int) -> list[list[int | None]]:
    """This rank's micro-batches of batch positions; None pads so that every rank gets the same count.

    Positions rank, rank + world, ...; the count of micro-batches is the same on every rank, so each rank
    runs the same number of forwards and one synchronised backward, whatever the batch size.
    """
    per_rank = math.ceil(batch_size / world)
    mine: list[int | None] = list(range(rank, batch_size, world))
    mine += [None] * (per_rank - len(mine))
    return [mine[i : i + micro_batch] for i in range(0, per_rank, micro_batch)]
