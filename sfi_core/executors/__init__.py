"""Executors run a stage over shards of rows: `local` in this process, `ray` on a local or remote cluster."""

from __future__ import annotations

import os

from sfi_core.cli_errors import EnvironmentSettingError
from sfi_core.executors.base import Executor, Shard, ShardResult

# The executor names every command takes (--executor), in the order help texts list them.
EXECUTORS = ("local", "ray")


def _default_executor() -> str:
    """Ray, in-process unless --address, for every command; SFI_EXECUTOR=local makes one process the
    default (the tests do, as each Ray start costs seconds on two cores)."""
    chosen = os.environ.get("SFI_EXECUTOR") or "ray"
    if chosen not in EXECUTORS:
        raise EnvironmentSettingError(
            f"SFI_EXECUTOR={chosen!r} is not one of {', '.join(EXECUTORS)}: unset it or pick one"
        )
    return chosen


# The default of ExecutionConfig.executor, for every command (sfi-data and sfi-bench alike).
DEFAULT_EXECUTOR = _default_executor()


def make_executor(
    kind: str, *, address: str | None = None, num_cpus: int | None = None, num_gpus: float | None = None
) -> Executor:
    if kind == "local":
        from sfi_core.executors.local import LocalExecutor

        return LocalExecutor()
    if kind == "ray":
        # RayExecutor, which also overlaps a streamed SplitChain's CPU and GPU halves.
        from sfi_core.executors.streaming import StreamingExecutor

        return StreamingExecutor(address=address, num_cpus=num_cpus, num_gpus=num_gpus)
    raise ValueError(f"unknown executor {kind!r}: use {' or '.join(repr(name) for name in EXECUTORS)}")


__all__ = ["DEFAULT_EXECUTOR", "EXECUTORS", "Executor", "Shard", "ShardResult", "make_executor"]
