"""The one place for the frame-count set, the filter thresholds and every stage setting.

Every field carries its help text (`metadata["help"]`) and, where it has a fixed set of values, its
choices: the CLI builds its options from them (`sfi_data.commands.options`), and `apply_overrides`
checks a YAML section whole (unknown keys, wrong types, unknown choices) before any stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfi_core.config import (  # noqa: F401 - the data chain's settings re-export the toolkit
    ExecutionConfig,
    apply_overrides,
    check_choice,
    load_yaml,
    setting,
    to_dict,
    validate,
)
from sfi_core.constants import DEFAULT_READER, F_MAX, FRAME_COUNTS, READERS

# The data chain's name for the execution settings (sfi_core.config.ExecutionConfig).
RunConfig = ExecutionConfig

SIMILARITY_BACKENDS = ("clip", "hsv-hist")
FLOW_BACKENDS = ("raft", "dis", "farneback")
DEVICES = ("auto", "cpu", "cuda")


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
class FilterStageConfig:
    probe: ProbeConfig = setting(help="Probe settings.", factory=ProbeConfig)
    meta: MetaFilterConfig = setting(help="Meta filter (fps, length).", factory=MetaFilterConfig)
    score: ScoreConfig = setting(help="First/last frame scores.", factory=ScoreConfig)
    thresholds: ThresholdConfig = setting(help="Keep-ranges of the scores.", factory=ThresholdConfig)
