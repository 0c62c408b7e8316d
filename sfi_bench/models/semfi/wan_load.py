"""Load a large checkpoint into an empty (meta-device) model one tensor at a time, cast as it is read.

Both Wan2.1 transformers on the Hub are stored in float32 (about 65 GB for 14B parameters). Reading a shard
whole and casting afterwards holds the float32 copy; this reader holds, beyond the model in its load dtype,
one float32 tensor (the largest is under 0.3 GB at 14B) and the pages of the shard being read, which the
kernel maps from the file and can drop at any time. `peak_rss_growth` measures that on a real load.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

SAFETENSORS_INDEX = "diffusion_pytorch_model.safetensors.index.json"


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not fill the model exactly (missing, unexpected or misshapen ones)."""


def safetensors_files(folder: Path, stem: str = "diffusion_pytorch_model") -> list[Path]:
    """The shards `<stem>.safetensors.index.json` names (in order), else `<stem>.safetensors`, else [].
    diffusers names its files diffusion_pytorch_model*, transformers model*."""
    folder = Path(folder)
    index = folder / f"{stem}.safetensors.index.json"
    if index.is_file():
        names = dict.fromkeys(json.loads(index.read_text())["weight_map"].values())
        return [folder / name for name in names]
    single = folder / f"{stem}.safetensors"
    return [single] if single.is_file() else []


def safetensors_shapes(files: Iterable[Path]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, read from the file headers only."""
    from safetensors import safe_open

    shapes = {}
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                shapes[key] = tuple(handle.get_slice(key).get_shape())
    return shapes


def read_safetensors(files: Iterable[Path]) -> Iterator[tuple[str, object, Path]]:
    """(key, tensor, file) one tensor at a time; a shard's file is closed before the next opens."""
    from safetensors import safe_open

    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118
                yield key, handle.get_tensor(key), path


def load_pth(path: Path) -> dict:
    """A torch.save file's tensors, memory-mapped (nothing is read until a tensor is used); a file in the
    legacy (pre-zip) format cannot be mapped and is read whole."""
    import torch

    try:
        return torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
        return torch.load(str(path), map_location="cpu", weights_only=True)


def read_pth(path: Path) -> Iterator[tuple[str, object, Path]]:
    """(key, tensor, file) from a torch.save file, one at a time (see load_pth)."""
    state = load_pth(path)
    for key in list(state):
        yield key, state.pop(key), Path(path)


def empty_model(build: Callable[[], object]):
    """`build()` with parameters on the meta device (no memory); buffers stay real (RoPE tables, ids)."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        return build()


def keeps_fp32(model, key: str, dtype) -> bool:
    """Whether diffusers'/transformers' from_pretrained would keep this parameter in float32 at `dtype`, so a
    model loaded here runs exactly as one they load (diffusers: `_keep_in_fp32_modules` at any dtype;
    transformers: `_keep_in_fp32_modules` at fp16 only, `_keep_in_fp32_modules_strict` at fp16 and bf16)."""
    import torch

    parts = key.split(".")
    is_diffusers = type(model).__module__.startswith("diffusers")
    names = set(getattr(model, "_keep_in_fp32_modules", None) or [])
    if not is_diffusers:
        names = names if dtype == torch.float16 else set()
        if dtype in (torch.float16, torch.bfloat16):
            names |= set(getattr(model, "_keep_in_fp32_modules_strict", None) or [])
    return dtype != torch.float32 and any(name in parts for name in names)


def fill_model(
    model, tensors: Iterable[tuple[str, object, Path]], rename, dtype, aliases=None, device=None
) -> None:
    """Put each (key, tensor) into the empty `model` under `rename(key, tensor)` -> [(name, tensor)], cast
    to its load dtype and moved to `device` (default: the CPU) one tensor at a time, so a model loaded onto
    a GPU never sits in host memory whole. `aliases` maps names the model lists twice (tied weights) to the
    name that is loaded. Raises CheckpointMismatchError unless every parameter is filled exactly once."""
    aliases = aliases or {}
    expected = {k: v for k, v in model.state_dict().items() if k not in aliases}
    filled: dict[str, Path] = {}
    # Cast tensors wait here until their file is done: one load_state_dict call per file, not per tensor
    # (each call walks every module: 20 ms at 14B, 26 s over its 1303 tensors).
    pending: dict[str, object] = {}
    for key, tensor, path in tensors:
        if pending and path != filled[next(iter(pending))]:
            model.load_state_dict(pending, strict=False, assign=True)
            pending = {}
        for name, value in rename(key, tensor):
            if name not in expected:
                raise CheckpointMismatchError(
                    f"{path}: {key} -> {name} is not a parameter of {type(model).__name__}"
                )
            if name in filled:
                raise CheckpointMismatchError(f"{path}: {name} given twice (also in {filled[name]})")
            if tuple(value.shape) != tuple(expected[name].shape):
                raise CheckpointMismatchError(
                    f"{path}: {key} has shape {tuple(value.shape)}, {type(model).__name__}.{name} needs "
                    f"{tuple(expected[name].shape)}"
                )
            target = expected[name].dtype if not value.is_floating_point() else dtype
            if keeps_fp32(model, name, dtype):
                import torch

                target = torch.float32
            # A copy, never a view of the memory-mapped file: the file can close and its pages go.
            pending[name] = value.to(device=device or "cpu", dtype=target, copy=True)
            filled[name] = path
    model.load_state_dict(pending, strict=False, assign=True)
    missing = sorted(set(expected) - set(filled))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CheckpointMismatchError(f"the checkpoint has no tensor for {type(model).__name__}.{shown}")
    if aliases and hasattr(model, "tie_weights"):
        model.tie_weights()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_rss_growth(run: Callable[[], object]) -> tuple[object, int]:
    """(run(), how many bytes the resident set peaked above where it stood before). Linux only: it resets the
    kernel's high-water mark (VmHWM) through /proc/self/clear_refs and reads it back after the call."""
    before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    result = run()
    return result, (_status_kib("VmHWM") - before) * 1024
