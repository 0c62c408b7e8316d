"""Metric states as bytes: NumPy arrays plus JSON in one .npz payload, never pickle.

Each (clip, metric) row of the score ledger (sfi_bench.scoring) carries its state so. States are
plain data (numbers, strings, lists and dicts of them, arrays, tensors); anything else is refused when
written, and reading never runs code (`allow_pickle=False`), so a run directory from elsewhere can be
scored safely.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

META_KEY = "__meta__"
SCALARS = (int, float, bool, str, type(None))


class StateEncoder:
    """Turns a state into JSON with array placeholders; the arrays are collected on the side."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def _array(self, array: np.ndarray, kind: str) -> dict[str, str]:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(array)
        return {kind: key}

    def encode(self, value: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.Tensor):
            return self._array(value.detach().cpu().numpy(), "__tensor__")
        if isinstance(value, np.ndarray):
            return self._array(value, "__array__")
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, SCALARS):
            return value
        if isinstance(value, list | tuple):
            return [self.encode(v) for v in value]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v) for k, v in value.items()}}
        raise TypeError(f"a metric state holds a {type(value).__name__}, which a score file cannot store")


def decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            return arrays[value["__array__"]]
        if "__tensor__" in value:
            import torch

            return torch.from_numpy(np.array(arrays[value["__tensor__"]]))
        return {k: decode(v, arrays) for k, v in value["__dict__"].items()}
    return value


def encode_state(state: Any) -> bytes:
    """A state as one .npz payload: its JSON (arrays as placeholders) and the arrays."""
    encoder = StateEncoder()
    meta = encoder.encode(state)
    blob = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **{META_KEY: blob}, **encoder.arrays)
    return buffer.getvalue()


def decode_state(payload: bytes) -> Any:
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    return decode(json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8")), arrays)


def read_npz(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A score file of a run directory from before the score ledger (scores/clips/{clip_id}.npz)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    return meta, arrays
