"""The settings of the dataset steps after `cut` (caption, split, stats): one dataclass each, CLI help included.

Every field carries its help text in `metadata["help"]`; the commands build their options from it with
`cli_option`, so a default or a help line lives in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfi_core.config import check_choice, cli_option, setting, with_options  # noqa: F401 - re-exported
from sfi_core.constants import FRAME_COUNTS

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"  # package data: ships inside the wheel
DEFAULT_PROMPT = PROMPTS_DIR / "caption_v1.yaml"
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-32B-Instruct"


@dataclass
class CaptionConfig:
    """Section 3.3.1: dense captions by a vision-language model (Qwen2.5-VL-32B) behind vLLM."""

    api_bases: list[str] = setting(
        factory=lambda: ["http://localhost:8000/v1"],
        help="OpenAI-compatible base URL of a vLLM server; repeat for round-robin.",
    )
    model: str = setting(DEFAULT_MODEL, "Model name the server serves.")
    prompt: str = setting(
        str(DEFAULT_PROMPT), "Versioned prompt file (YAML); the default ships in the package."
    )
    frames: int = setting(8, "Frames sent per clip, first and last included.")
    # Qwen2.5-VL spends one token per 28x28 px patch: 448 px keeps 8 frames near 2k image tokens.
    max_side: int = setting(448, "Longest side of each frame sent, in pixels.")
    jpeg_quality: int = setting(90, "JPEG quality of the frames sent (1-100).")
    concurrency: int = setting(16, "Requests in flight per worker.")
    timeout_s: float = setting(180.0, "Seconds per request before it is retried.")
    max_attempts: int = setting(6, "Tries per clip (429/5xx/timeouts/refused connections are retried).")
    backoff_base_s: float = setting(1.0, "First retry waits about this long; doubles per attempt.")
    backoff_max_s: float = setting(30.0, "Longest wait between two attempts.")
    max_tokens: int = setting(512, "Longest caption, in tokens.")
    temperature: float = setting(0.2, "Sampling temperature.")
    # A batch is the unit of resume: its requests run concurrently and land in one part file, so a
    # killed run loses at most the batch in flight. Keep it a few times `concurrency`.
    batch_size: int = setting(64, "Clips per batch (one part file each; the unit of resume).")
    reader: str | None = setting(None, "Frame reader: pyav, decord or auto (default: the one `cut` used).")
    overwrite: bool = setting(False, "Caption every clip again.")


@dataclass
class CategorizeConfig:
    """Paper Fig. 3a: a content category per clip, from its caption (sfi_core.categories)."""

    categorize_with: list[str] = setting(
        factory=list,
        help="OpenAI-compatible base URL (the caption server) to ask instead of the keyword taxonomy; "
        "repeat for round-robin.",
    )
    model: str = setting(DEFAULT_MODEL, "Model name the server serves (with --categorize-with).")
    concurrency: int = setting(16, "Requests in flight per worker (with --categorize-with).")
    timeout_s: float = setting(60.0, "Seconds per request before it is retried.")
    max_attempts: int = setting(6, "Tries per clip (429/5xx/timeouts/refused connections are retried).")
    backoff_base_s: float = setting(1.0, "First retry waits about this long; doubles per attempt.")
    backoff_max_s: float = setting(30.0, "Longest wait between two attempts.")
    batch_size: int = setting(256, "Clips per batch (one part file each; the unit of resume).")
    overwrite: bool = setting(False, "Categorize every clip again.")


@dataclass
class SplitConfig:
    """Section 3.3.2: 100 videos x all 6 scales = 600 test clips."""

    num_videos: int = setting(100, "Source videos in the test set (each contributes every scale).")
    seed: int = setting(0, "Seed of the random choice; the same seed gives the same split.")
    scales: tuple[int, ...] = setting(FRAME_COUNTS, "Scales a test video must have.")
    allow_fewer: bool = setting(False, "Take every eligible video when fewer than --num-videos exist.")
    # Re-encodes, resizes and crops of one footage must not land on both sides of the split.
    near_duplicates: bool = setting(
        True, "Group near-duplicate sources by a perceptual hash of their frames."
    )
    hash_frames: int = setting(5, "Frames hashed per video (evenly spaced over its longest clip).")
    # A 64-bit DCT hash: re-encodes differ by 0-4 bits, resizes by a few more, unrelated footage by ~32.
    hash_max_distance: int = setting(10, "Largest Hamming distance (of 64 bits) of two matching frames.")
    reader: str | None = setting(None, "Frame reader: pyav, decord or auto (default: the one `cut` used).")
    stratify: str | None = setting(
        None, "category: draw the test videos per content category, in proportion to the eligible ones."
    )


@dataclass
class ExportConfig:
    """Training shards from the split: WebDataset tars, or a 🤗 datasets folder of them with a card."""

    dest: str = setting("", "Folder for the shards (and, with --format hf, the dataset card).")
    format: str = setting("webdataset", "webdataset (tar shards + index) or hf (a load_dataset folder).")
    split: str = setting("all", "train, test or all (both; hf needs all).")
    shard_size: int | None = setting(None, "Samples per shard (default: bounded by --max-shard-bytes only).")
    max_shard_bytes: int | None = setting(
        1 << 30, "Largest shard, bytes (a sample larger than this gets a shard of its own)."
    )
    license: str | None = setting(
        None, "Licence of every source (SPDX id, e.g. cc-by-4.0); default: DIR/licenses.json, else unknown."
    )
    overwrite: bool = setting(False, "Write every shard again.")


@dataclass
class StatsConfig:
    plots: bool = setting(True, "Draw the plots (matplotlib) next to the card.")
    samples: int = setting(4, "Clips shown in the sample sheet (first, middle and last frame).")
    reader: str | None = setting(None, "Frame reader: pyav, decord or auto (default: the one `cut` used).")


def _find_key(settings: Any, key: str) -> Any:
    """The first value of `key` anywhere in nested settings (a chain records each stage's own)."""
    if isinstance(settings, dict):
        if settings.get(key) is not None:
            return settings[key]
        for value in settings.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def resolve_reader(out_dir: Path, reader: str | None) -> str:
    """The frame reader to use: the one given, else the one `cut` (or the filter) recorded, else the default.

    Reading what the earlier stages recorded keeps one dataset on one reader without asking twice.
    """
    from sfi_core.constants import DEFAULT_READER, READERS
    from sfi_core.driver import recorded_settings

    check_choice("reader", reader, READERS)
    if reader is not None:
        return reader
    for stage in ("cut", "filter"):
        found = _find_key(recorded_settings(Path(out_dir), stage), "reader")
        if found in READERS:
            return found
    return DEFAULT_READER


def settings_changed(out_dir: Path, stage: Any) -> bool:
    """Whether `stage`'s finished work in `out_dir` was made with other settings than `stage.settings()`.

    The split's hashes and the card's sample frames are cheap and only feed what follows: on a change
    they are redone (never mixed), instead of stopping the user as a curation stage does.
    """
    from sfi_core.driver import changed_settings, recorded_settings

    held = recorded_settings(Path(out_dir), stage.name)
    return held is not None and bool(changed_settings(held, stage.settings()))
