"""The one place for the frame-count set, the filter thresholds and every stage setting.

Every field carries its help text (`metadata["help"]`) and, where it has a fixed set of values, its
choices: the CLI builds its options from them (`sfi_data.commands.options`), and `apply_overrides`
checks a YAML section whole (unknown keys, wrong types, unknown choices) before any stage runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sfi_core.constants import DEFAULT_READER, F_MAX, FRAME_COUNTS, READERS
from sfi_core.executors import EXECUTORS

SIMILARITY_BACKENDS = ("clip", "hsv-hist")
FLOW_BACKENDS = ("raft", "dis", "farneback")
DEVICES = ("auto", "cpu", "cuda")


def setting(
    default: Any = dataclasses.MISSING, help: str = "", choices: tuple = (), factory: Any = None
) -> Any:
    """A dataclass field with its help text and, optionally, the values it may take."""
    metadata = {"help": help, "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class ProbeConfig:
    verify_frame_count: str = setting(
        "packets",
        "Frame count of containers that store none: count packets, or decode (slow, exact for broken indexes).",
        ("packets", "decode"),
    )


@dataclass
class MetaFilterConfig:
    """Section 3.3.1: FPS <= 30 and f_max <= frame count <= 4 * f_max."""

    max_fps: float = setting(30.0, "Keep videos with fps <= this.")
    min_frames: int = setting(F_MAX, "Keep videos with at least this many frames (f_max).")
    max_frames: int = setting(4 * F_MAX, "Keep videos with at most this many frames (4 f_max).")


@dataclass
class ScoreConfig:
    """First-vs-last-frame scores.

    similarity: "clip" (the paper's; open_clip weights needed) or "hsv-hist" (weight-free: cosine of
    HSV colour histograms, honestly named, not CLIP).
    flow: "raft" (the paper's; torchvision RAFT weights needed), "dis" or "farneback" (OpenCV, no weights).
    """

    similarity: str = setting(
        "clip",
        "First/last similarity: clip (paper; needs weights) or hsv-hist (weight-free).",
        SIMILARITY_BACKENDS,
    )
    clip_model: str = setting("ViT-B-32", "open_clip model name.")
    clip_pretrained: str = setting("openai", "open_clip tag, or a checkpoint file.")
    flow: str = setting(
        "raft",
        "First/last flow: raft (paper; needs weights), dis or farneback (OpenCV, weight-free).",
        FLOW_BACKENDS,
    )
    raft_model: str = setting("raft_large", "torchvision RAFT model.", ("raft_large", "raft_small"))
    raft_iters: int = setting(20, "RAFT refinement iterations.")
    # Flow is computed at a fixed working size, so scores from videos of any size compare.
    flow_width: int = setting(512, "Width the frames are resized to for the flow, px.")
    flow_height: int = setting(288, "Height the frames are resized to for the flow, px.")
    device: str = setting("auto", "Device of the scoring networks: auto, cpu or cuda.", DEVICES)
    batch_size: int = setting(8, "Frame pairs per network batch.")
    reader: str = setting(DEFAULT_READER, "Frame reader: pyav (fastest here), decord or auto.", READERS)


@dataclass
class RangeConfig:
    """A keep-range for one score: explicit bounds win over quantiles; None means open."""

    low: float | None = setting(None, "Explicit low threshold (wins over the quantile).")
    high: float | None = setting(None, "Explicit high threshold (wins over the quantile).")
    low_quantile: float | None = setting(None, "Low threshold as a quantile of the scored corpus.")
    high_quantile: float | None = setting(None, "High threshold as a quantile of the scored corpus.")


def _quantile_band() -> RangeConfig:
    # The paper gives no numbers: keep the 5-95 % band of each score.
    return RangeConfig(low_quantile=0.05, high_quantile=0.95)


@dataclass
class ThresholdConfig:
    # The paper keeps videos with meaningful change: not near-identical endpoints, not unrelated ones.
    similarity: RangeConfig = setting(help="Keep-range of the first/last similarity.", factory=_quantile_band)
    flow: RangeConfig = setting(help="Keep-range of the first/last flow score.", factory=_quantile_band)


@dataclass
class CutConfig:
    frame_counts: tuple[int, ...] = setting(
        FRAME_COUNTS, "Clip lengths cut from every kept video (S, eq. 3)."
    )
    reader: str | None = setting(
        None, "Frame reader: pyav, decord or auto (default: the one the filter recorded).", READERS
    )
    codec: str = setting("libx264", "Encoder of the clips.")
    pix_fmt: str = setting("yuv420p", "Pixel format of the clips.")
    crf: int = setting(18, "x264 quality, lower is better.")
    preset: str = setting("medium", "x264 preset.")
    score_clips: bool = setting(True, "Score each clip's own first/last frames too (the filter's backends).")
    # A hard cut: a mean abs diff of 64 px greyscale above hard_cut_threshold, or an isolated spike
    # above hard_cut_min_diff and hard_cut_ratio times both neighbouring diffs (cut.hard_cut_reason).
    hard_cut_threshold: float | None = setting(
        60.0, "Drop clips whose consecutive-frame difference exceeds this (0 or null: no hard-cut check)."
    )
    hard_cut_min_diff: float = setting(10.0, "Smallest difference that counts as an isolated spike.")
    hard_cut_ratio: float | None = setting(
        2.0, "Also drop clips with a jump this many times its neighbours (0 or null: no spike check)."
    )


@dataclass
class ScenesConfig:
    """Scene splitting before the filter (sfi-data scenes): shot boundaries by PySceneDetect."""

    detector: str = setting("content", "PySceneDetect detector: content, adaptive, histogram or hash.")
    threshold: float | None = setting(None, "Detector threshold (default: the detector's own).")
    min_scene_len: int = setting(15, "Shortest shot in frames; shorter ones merge into a neighbour.")
    decode_width: int = setting(256, "Width the frames are scaled to for detection, px.")
    max_segment_frames: int | None = setting(
        4 * F_MAX, "Split longer shots into near-equal windows (0 or null: never)."
    )
    write_segments: bool = setting(False, "Re-encode each segment to DIR/segments/ (else virtual segments).")
    crf: int = setting(18, "x264 quality of written segments.")
    preset: str = setting("medium", "x264 preset of written segments.")


@dataclass
class RunConfig:
    executor: str = setting("ray", "ray (in-process unless --address) or local (serial).", EXECUTORS)
    address: str | None = setting(None, "Ray cluster address (or set RAY_ADDRESS).")
    num_cpus: int | None = setting(None, "CPUs for the in-process Ray (default: all).")
    num_gpus: float | None = setting(None, "GPUs each Ray worker asks for (e.g. 0.5).")
    shard_size: int | None = setting(
        None, "Inputs per shard, the unit of work and of resume (default: the stage's own)."
    )
    overwrite: bool = setting(False, "Redo finished work instead of resuming.")


@dataclass
class FilterStageConfig:
    probe: ProbeConfig = setting(help="Probe settings.", factory=ProbeConfig)
    meta: MetaFilterConfig = setting(help="Meta filter (fps, length).", factory=MetaFilterConfig)
    score: ScoreConfig = setting(help="First/last frame scores.", factory=ScoreConfig)
    thresholds: ThresholdConfig = setting(help="Keep-ranges of the scores.", factory=ThresholdConfig)


def check_choice(where: str, value: Any, choices: tuple) -> None:
    """One line naming the choices instead of a silent fallback (`--reader decrod`)."""
    if choices and value is not None and value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where} {value!r} is not one of {', '.join(map(str, choices))}{hint}")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` as type `hint` (int -> float, list -> tuple), or ValueError naming the setting."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ValueError:
                continue
    elif origin in (tuple, list) and isinstance(value, (list, tuple)):
        items = [_coerce(item, args[0], f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif hint in (int, str, bool) and type(value) is hint:
        return value
    elif hint is Any:
        return value
    raise ValueError(f"setting {where} must be {_type_name(hint)}, not {value!r}")


def _merge(obj: Any, updates: dict[str, Any], where: str) -> Any:
    """A copy of dataclass `obj` with `updates` applied and checked, recursing into nested dataclasses."""
    if not isinstance(updates, dict):
        raise ValueError(f"setting {where.rstrip('.') or 'section'} must be a mapping, not {updates!r}")
    specs = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for key, value in updates.items():
        if key not in specs:
            close = difflib.get_close_matches(str(key), list(specs), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown setting '{where}{key}'{hint}; known: {', '.join(specs)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            value = _merge(current, value, f"{where}{key}.")
        else:
            value = _coerce(value, hints[key], f"{where}{key}")
            check_choice(f"{where}{key}", value, specs[key].metadata.get("choices", ()))
        changes[key] = value
    return dataclasses.replace(obj, **changes)


def apply_overrides(obj: Any, updates: dict[str, Any] | None, where: str = "") -> Any:
    """`obj` with `updates` applied and checked; `where` ("cut.") names the section in errors."""
    return _merge(obj, updates or {}, where)


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping, or ValueError in one line (missing file, syntax error with its line, not a mapping)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ValueError(f"{path}:{where} is not valid YAML ({problem})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def validate(obj: Any, where: str = "") -> Any:
    """Check every choice-valued field of a config built in code (YAML and flags are checked on merge)."""
    for spec in dataclasses.fields(obj):
        value = getattr(obj, spec.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{where}{spec.name}.")
        else:
            check_choice(f"{where}{spec.name}", value, spec.metadata.get("choices", ()))
    return obj
