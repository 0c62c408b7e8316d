"""The one place for the frame-count set, the filter thresholds and every stage setting."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sfi_core.constants import DEFAULT_READER, F_MAX, FRAME_COUNTS, READERS  # noqa: F401 - re-exported


@dataclass
class ProbeConfig:
    # Containers that do not store a frame count (nb_frames == 0) get it by counting packets;
    # "decode" counts decoded frames instead (slow, exact even for broken indexes).
    verify_frame_count: str = "packets"  # packets | decode


@dataclass
class MetaFilterConfig:
    """Section 3.3.1: FPS <= 30 and f_max <= frame count <= 4 * f_max."""

    max_fps: float = 30.0
    min_frames: int = F_MAX
    max_frames: int = 4 * F_MAX


@dataclass
class ScoreConfig:
    """First-vs-last-frame scores.

    similarity: "clip" (the paper's; open_clip weights needed) or "hsv-hist" (weight-free: cosine of
    HSV colour histograms, honestly named, not CLIP).
    flow: "raft" (the paper's; torchvision RAFT weights needed), "dis" or "farneback" (OpenCV, no weights).
    """

    similarity: str = "clip"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    flow: str = "raft"
    raft_model: str = "raft_large"
    raft_iters: int = 20
    # Flow is computed at a fixed working size, so scores from videos of any size compare.
    flow_width: int = 512
    flow_height: int = 288
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 8
    reader: str = DEFAULT_READER


@dataclass
class RangeConfig:
    """A keep-range for one score: explicit bounds win over quantiles; None means open."""

    low: float | None = None
    high: float | None = None
    low_quantile: float | None = None
    high_quantile: float | None = None


@dataclass
class ThresholdConfig:
    # The paper keeps videos with meaningful change: not near-identical endpoints, not unrelated ones.
    similarity: RangeConfig = field(
        default_factory=lambda: RangeConfig(low_quantile=0.05, high_quantile=0.95)
    )
    flow: RangeConfig = field(default_factory=lambda: RangeConfig(low_quantile=0.05, high_quantile=0.95))


@dataclass
class CutConfig:
    frame_counts: tuple[int, ...] = FRAME_COUNTS
    reader: str | None = None  # None: the reader the filter recorded
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    crf: int = 18
    preset: str = "medium"
    # Score each clip's own first/last frames too (same backends as the filter).
    score_clips: bool = True
    # Drop a clip whose consecutive frames contain a hard cut: a mean abs diff of 64 px greyscale
    # above hard_cut_threshold (None: no check at all), or an isolated spike above hard_cut_min_diff
    # and hard_cut_ratio times both neighbouring diffs (None: no spike check). See cut.hard_cut_reason.
    hard_cut_threshold: float | None = 60.0
    hard_cut_min_diff: float = 10.0
    hard_cut_ratio: float | None = 2.0


@dataclass
class ScenesConfig:
    """Scene splitting before the filter (sfi-data scenes): shot boundaries by PySceneDetect.

    detector: content | adaptive | histogram | hash (PySceneDetect). threshold None: the detector's
    own default. Frames are decoded once, scaled to `decode_width` px wide, and fed to the detector.
    """

    detector: str = "content"
    threshold: float | None = None
    min_scene_len: int = 15  # frames; shorter shots are merged into their neighbour
    decode_width: int = 256
    # Shots longer than this are split into near-equal windows (None: never); 4 * f_max by default.
    max_segment_frames: int | None = 4 * F_MAX
    # Re-encode each segment to DIR/segments/ (otherwise segments are virtual: source + frame range).
    write_segments: bool = False
    crf: int = 18
    preset: str = "medium"


@dataclass
class RunConfig:
    executor: str = "ray"  # ray | local
    address: str | None = None
    num_cpus: int | None = None
    num_gpus: float | None = None
    shard_size: int | None = None  # None: the stage's own (sfi_core.stage.Stage.shard_size)
    overwrite: bool = False


@dataclass
class FilterStageConfig:
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    meta: MetaFilterConfig = field(default_factory=MetaFilterConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    thresholds: ThresholdConfig = field(default_factory=ThresholdConfig)


def _merge(obj: Any, updates: dict[str, Any], where: str) -> Any:
    """Return a copy of dataclass `obj` with `updates` applied, recursing into nested dataclasses."""
    names = {f.name for f in dataclasses.fields(obj)}
    changes = {}
    for key, value in updates.items():
        if key not in names:
            raise ValueError(f"unknown setting {where}{key!r}; known: {sorted(names)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            value = _merge(current, value, f"{where}{key}.")
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        changes[key] = value
    return dataclasses.replace(obj, **changes)


def apply_overrides(obj: Any, updates: dict[str, Any] | None) -> Any:
    return _merge(obj, updates or {}, "")


def load_yaml(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
