"""Training checkpoints that hold what trains: the LoRA, AdamW's state of it, the LR schedule, the step, RNG.

Never the frozen base. accelerate's `save_state` under FSDP writes the whole sharded model (30.5 GiB for the
bf16 Wan2.1-I2V-14B transformer, every checkpoint), so the trainer writes its own folder, `step_N/`:

    adapters/          the 7 adapters in diffusers' LoRA format + mol_config.json (MixtureOfLoRA.load reads it)
    optimizer.safetensors  AdamW's state as `<LoRA parameter name>/<field>` tensors, its param groups as JSON
                       in the metadata (no pickle, a few bytes per tensor)
    schedule.pt        the LR scheduler's state and the step
    rng_<rank>.pt      each rank's Python, NumPy, torch (and CUDA) generator states
    trainer_state.json written last, by the trainer (a folder without it is incomplete)

Tensors are whole (gathered from FSDP2 shards; gathering is collective, so every rank calls `write` and
`read`), so a checkpoint does not depend on how the run was spread: one process, DDP or FSDP2 resume it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch

from sfi_bench.models.semfi.mol import COMPONENT_PREFIX

ADAPTERS = "adapters"
OPTIMIZER = "optimizer.safetensors"
SCHEDULE = "schedule.pt"


def rng_file(rank: int) -> str:
    return f"rng_{rank}.pt"


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of an FSDP2 shard (a DTensor; collective), or the tensor itself."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def like(full: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """`full` laid out as `param` is: this rank's shard of an FSDP2 parameter (no communication), else itself."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(param, DTensor):
        full = full.to(param.device_mesh.device_type)
        return distribute_tensor(full, param.device_mesh, param.placements, src_data_rank=None)
    return full.to(param.device)


def lora_parameters(mol) -> dict[str, tuple[str, str, torch.nn.Parameter]]:
    """Parameter name -> (adapter, key in that adapter's file, parameter), for every LoRA parameter."""
    found = {}
    for name, param in mol.named_parameters().items():
        parts = name.split(".")
        adapters = [a for a in mol.config.adapter_names if a in parts]
        if len(adapters) != 1:
            raise ValueError(f"LoRA parameter {name} belongs to no adapter of {mol.config.adapter_names}")
        (adapter,) = adapters
        key = COMPONENT_PREFIX + ".".join(p for p in parts if p != adapter)  # peft's key: adapter name out
        found[name] = (adapter, key, param)
    return found


def optimizer_state(optimizer, names: dict[int, str], keep: bool = True) -> tuple[dict, dict]:
    """The optimizer's state as whole tensors keyed `<parameter name>/<field>` and its param groups (with
    parameter names for indices) as safetensors metadata. Collective on FSDP2: every rank calls it, one
    tensor at a time, and only a rank that `keep`s holds the gathered copies (4.7 GiB at 14B)."""
    state = optimizer.state_dict()
    order = [names[id(p)] for group in optimizer.param_groups for p in group["params"]]
    tensors = {}
    for i, fields in sorted(state["state"].items()):
        for field, value in sorted(fields.items()):
            value = whole(value)
            if keep:
                tensors[f"{order[i]}/{field}"] = value.detach().cpu().contiguous()
    groups = [g | {"params": [order[i] for i in g["params"]]} for g in state["param_groups"]]
    return tensors, {"param_groups": json.dumps(groups)}


def load_optimizer_state(optimizer, tensors: dict, metadata: dict, names: dict[int, str]) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    index = {names[id(p)]: i for i, p in enumerate(params)}
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        name, field = key.rsplit("/", 1)
        if name not in index:
            raise ValueError(f"the checkpoint has optimizer state for {name}, which this model lacks")
        param = params[index[name]]
        state.setdefault(index[name], {})[field] = like(value, param) if value.shape == param.shape else value
    groups = json.loads(metadata["param_groups"])
    for group in groups:  # JSON made the tuples (AdamW's betas) lists
        group.update({k: tuple(v) for k, v in group.items() if isinstance(v, list) and k != "params"})
        group["params"] = [index[n] for n in group["params"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write(folder: Path, mol, optimizer, schedule: dict, rank: int, main: bool) -> None:
    """Every rank calls this; rank 0 (`main`) writes the shared files, each rank its RNG states."""
    from safetensors.torch import save_file

    folder = Path(folder)
    mol.save(folder / ADAPTERS, write=main, merged=False)
    names = {id(p): name for name, (_, _, p) in lora_parameters(mol).items()}
    tensors, metadata = optimizer_state(optimizer, names, keep=main)
    if main:
        save_file(tensors, folder / OPTIMIZER, metadata=metadata)
        torch.save(schedule, folder / SCHEDULE)
    torch.save(rng_state(), folder / rng_file(rank))


def read(folder: Path, mol, optimizer, rank: int) -> dict:
    """Fill the LoRA parameters and the optimizer from `folder` (every rank); returns the schedule record."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = Path(folder)
    params = lora_parameters(mol)
    files = {a: load_file(folder / ADAPTERS / f"{a}.safetensors") for a in mol.config.adapter_names}
    expected = {(a, k) for a, k, _ in params.values()}
    stored = {(a, k) for a, state in files.items() for k in state}
    if expected != stored:
        raise ValueError(
            f"{folder / ADAPTERS} does not match this model's LoRA: {sorted(expected ^ stored)[:3]}"
        )
    with torch.no_grad():
        for adapter, key, param in params.values():
            value = like(files[adapter][key].to(param.dtype), param)
            param.copy_(value)
    names = {id(p): name for name, (_, _, p) in params.items()}
    with safe_open(folder / OPTIMIZER, "pt") as fh:
        metadata = fh.metadata()
    load_optimizer_state(optimizer, load_file(folder / OPTIMIZER), metadata, names)
    # Our own files (pickled Python and NumPy RNG states among them), not downloads: a full unpickle is fine.
    rng = folder / rng_file(rank)
    if rng.is_file():  # a run resumed on more ranks than it was saved on: those start from their seed
        set_rng_state(torch.load(rng, weights_only=False))
    return torch.load(folder / SCHEDULE, weights_only=False)
