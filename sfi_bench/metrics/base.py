"""The metric contract: per-clip samples in, mergeable state, per-clip values and set-level results out.

The harness (`sfi-bench score`) builds one ClipSample per generated clip (frames decoded once, shared
by every metric) and calls `update`; `compute` gives the aggregate over everything updated. To get
per-scale results the harness keeps one metric instance per group, or `merge`s partial states.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sfi_core.device import resolve_device


@dataclass
class ClipSample:
    clip_id: str
    num_frames: int
    generated: np.ndarray  # uint8 RGB (N, H, W, 3)
    reference: np.ndarray | None  # ground-truth clip, uint8 RGB (N, H, W, 3), or None (import without GT)
    first_condition: np.ndarray  # the condition images (lossless PNGs of the test clip)
    last_condition: np.ndarray
    prompt: str = ""
    fps: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricResult:
    value: float | None  # None: not computed (see reason); never a fake 0
    num_samples: int = 0
    reason: str | None = None


class MetricUnavailable(RuntimeError):
    """A metric cannot run here (missing weights or package); the message says how to fix it."""


class Metric:
    name: ClassVar[str] = "metric"  # registry name (what `--metric` takes)
    # The column name in every table, CSV header and JSON: the registry name itself (one name per metric).
    id: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.id = cls.name

    cap: ClassVar[float | None] = None  # best value the metric can take, where one exists (PSNR 100, SSIM 1)
    # Table 2 direction: "higher" (↑) or "lower" (↓).
    direction: ClassVar[str] = "higher"
    version: ClassVar[str] = "1"
    group: ClassVar[str] = ""  # Video Fidelity | Frame Fidelity | Semantic Fidelity | Video Quality
    weights: ClassVar[tuple[str, ...]] = ()  # names in sfi_core.weights.WEIGHTS

    def load(self) -> None:
        """Load networks (raise MetricUnavailable with the fix when that cannot be done)."""

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, sample: ClipSample) -> float | None:
        """Add one clip; return its per-clip value, or None for set-level metrics (FID, KID)."""
        raise NotImplementedError

    def merge(self, other: Metric) -> None:
        raise NotImplementedError

    def compute(self) -> MetricResult:
        raise NotImplementedError


# ---- Shared helpers for the metric implementations (the names above are the contract) ----

ARROWS = {"higher": "↑", "lower": "↓"}


def require_weights(name: str, weights_dir: str | Path | None = None) -> Path:
    """The local file of weights `name`, or MetricUnavailable carrying the table's 'how to get it'."""
    from sfi_core.weights import WeightsMissingError, resolve

    try:
        return resolve(name, Path(weights_dir) if weights_dir else None)
    except WeightsMissingError as err:
        raise MetricUnavailable(str(err)) from err


def require_package(module: str, pip_line: str) -> Any:
    """Import an optional dependency or raise MetricUnavailable with the exact install line."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MetricUnavailable(
            f"needs the Python package {module!r} ({err}). Install it: {pip_line}"
        ) from err


def match_size(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize uint8 (N, H, W, 3) frames to (height, width) when they differ (area for shrinking)."""
    import cv2

    if frames.shape[1] == height and frames.shape[2] == width:
        return frames
    shrink = frames.shape[1] * frames.shape[2] > height * width
    mode = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in frames])


@dataclass(frozen=True)
class State:
    """One declared piece of a metric's state (as torchmetrics' `add_state`): its name, the factory of
    its empty value, and how two states combine ("sum": numbers add; "cat": lists concatenate)."""

    name: str
    default: Callable[[], Any]
    merge: str = "sum"

    def combine(self, mine: Any, theirs: Any) -> Any:
        if self.merge == "sum":
            return mine + theirs
        if self.merge == "cat":
            return list(mine) + list(theirs)
        raise ValueError(f"unknown merge rule {self.merge!r} of state {self.name!r}: use sum or cat")


class ConfiguredMetric(Metric):
    """A metric built with (device, weights_dir); `fresh()` shares loaded networks, not state.

    The state is what `states` declares, nothing else: `reset`, `merge`, `state` and `load_state`
    are generic over it, so the harness stores, ships and merges any metric the same way.
    """

    label_text: ClassVar[str] = ""  # Table 2 column, arrow appended by `label`
    variant_of: ClassVar[str | None] = None  # the reference metric a weight-free/alt variant stands in for
    states: ClassVar[tuple[State, ...]] = ()

    def reset(self) -> None:
        for spec in self.states:
            setattr(self, spec.name, spec.default())

    def merge(self, other: Metric) -> None:
        if not isinstance(other, ConfiguredMetric) or other.states != self.states:
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        for spec in self.states:
            setattr(self, spec.name, spec.combine(getattr(self, spec.name), getattr(other, spec.name)))

    def state(self) -> dict[str, Any]:
        """The declared state, by name (what a score file keeps for one clip)."""
        return {spec.name: getattr(self, spec.name) for spec in self.states}

    def load_state(self, state: dict[str, Any]) -> ConfiguredMetric:
        """This instance with `state` (from `state()`) in place; returns itself."""
        missing = [spec.name for spec in self.states if spec.name not in state]
        if missing:
            raise ValueError(f"{self.name}: a stored state lacks {', '.join(missing)}; score it again")
        for spec in self.states:
            setattr(self, spec.name, state[spec.name])
        return self

    def __init__(self, device: str = "auto", weights_dir: str | Path | None = None) -> None:
        self.device = resolve_device(device)
        self.weights_dir = weights_dir
        self.reset()

    @classmethod
    def label(cls) -> str:
        return f"{cls.label_text or cls.name}{ARROWS[cls.direction]}"

    def fresh(self) -> ConfiguredMetric:
        """A copy with empty state that shares this instance's loaded networks (one per group)."""
        clone = copy.copy(self)
        clone.reset()
        return clone


class MeanMetric(ConfiguredMetric):
    """Weighted mean of per-clip values; state (total, weight, count) merges by addition."""

    states = (State("total", float), State("weight", float), State("count", int))

    def clip_value(self, sample: ClipSample) -> tuple[float, float] | None:
        """(per-clip value, its weight in the mean), or None when the clip does not apply."""
        raise NotImplementedError

    def update(self, sample: ClipSample) -> float | None:
        scored = self.clip_value(sample)
        if scored is None:
            return None
        value, weight = scored
        self.total += float(value) * weight
        self.weight += weight
        self.count += 1
        return float(value)

    def empty_reason(self) -> str:
        return "no clips to score"

    def compute(self) -> MetricResult:
        if self.count == 0 or self.weight == 0:
            return MetricResult(None, 0, self.empty_reason())
        return MetricResult(self.total / self.weight, self.count)
