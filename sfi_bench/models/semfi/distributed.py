"""Distributed training: the Accelerator of a launch, how a global batch splits over ranks, the step counter."""

from __future__ import annotations

import math
import os


class StepCounter:
    """The optimizer step, saved and restored with each checkpoint (semfi.checkpoint: schedule.pt)."""

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


def make_accelerator():
    """The Accelerator of this launch, FSDP2 included on CPU processes, and a check that every process joined.

    accelerate shards only on accelerators: on CPU (gloo) it would run a launch of an FSDP config as DDP without
    a word. Here the launch's FSDP plugin (read from the FSDP_* variables `accelerate launch` sets from the
    config) is turned on instead, so that a CPU run of configs/accelerate/fsdp2_*.yaml runs what a GPU run runs.
    """
    from accelerate import Accelerator, PartialState
    from accelerate.utils import (
        DistributedDataParallelKwargs,
        DistributedType,
        FullyShardedDataParallelPlugin,
    )
    from accelerate.utils.environment import parse_flag_from_env

    # No autocast: the frozen base runs in its own dtype (bf16 as at inference) and peft runs the fp32 adapters
    # in fp32; autocast would run the LoRA matmuls in bf16 too. Experts not routed to in a step get no
    # gradient, so DDP must allow unused parameters.
    accelerator = Accelerator(
        mixed_precision="no",
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    if accelerator.distributed_type == DistributedType.MULTI_CPU and parse_flag_from_env(
        "ACCELERATE_USE_FSDP"
    ):
        plugin = FullyShardedDataParallelPlugin()
        if plugin.fsdp_version != 2:
            raise ValueError("on CPU processes the trainer runs FSDP2 only (fsdp_version: 2)")
        accelerator.state.fsdp_plugin = plugin
        # Every later AcceleratorState() copies PartialState's fields over its own: set the type in both.
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP
        accelerator.state.distributed_type = DistributedType.FSDP
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:
        raise ValueError(
            f"launched as {launched} processes but accelerate set up {accelerator.num_processes}: without a GPU "
            f"set ACCELERATE_USE_CPU=true in the environment of `accelerate launch` (its --cpu flag starts "
            f"one process only)"
        )
    return accelerator


def strategy(accelerator, model) -> str:
    """How this run spreads over processes, in words, read from the prepared model: FSDP2 (its parameters are
    shards), DDP or one process."""
    from torch.distributed.tensor import DTensor

    if any(isinstance(p, DTensor) for p in model.parameters()):
        return "FSDP2"
    return "DDP" if accelerator.num_processes > 1 else "one process"
