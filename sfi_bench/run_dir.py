"""A run directory's identity: which model, test set and settings made the clips it holds."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfi_bench.storage import FrameStore
from sfi_core.driver import SettingsChangedError, changed_settings

if TYPE_CHECKING:
    from sfi_bench.generate import BenchRunConfig

log = logging.getLogger(__name__)

# What a run directory holds besides run.json: per-clip records, frames, scores, the parts and tables.
RUN_CONTENTS = ("meta", "frames", "scores", "work", "generations.parquet", "scores.parquet")


def check_run_dir(
    store: FrameStore, model: str, clips: Path, overwrite: bool, settings: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The run.json already there (None for a new directory); refuses another model or test set.

    settings: what shapes the generated frames (`generation_settings`). A directory whose clips were
    made with other settings is refused in one line naming the changed keys, and with --overwrite
    emptied first, so a rerun never leaves a run that is half one setting and half another.
    """
    if not store.run_json.is_file():
        return None
    info = store.read_run_info()
    if info.get("model") != model and not overwrite:
        raise ValueError(
            f"{store.run_dir} holds a run of model {info.get('model')!r}, not {model!r}: one run directory per "
            f"model. Pick another --out, or pass --overwrite to replace it."
        )
    if info.get("clips_manifest") != str(clips.resolve()) and not overwrite:
        raise ValueError(
            f"{store.run_dir} was run on {info.get('clips_manifest')}, not {clips.resolve()}; pick another --out."
        )
    held = info.get("settings")
    changes = changed_settings(held, settings) if settings is not None and held is not None else []
    if changes and store.records():
        if not overwrite:
            raise SettingsChangedError(
                f"{store.run_dir} holds clips generated with other settings ({'; '.join(changes)}): "
                f"rerun with --overwrite to redo every clip, or write to another --out"
            )
        log.info(
            "%s: settings changed (%s); --overwrite empties the run first", store.run_dir, "; ".join(changes)
        )
        for name in RUN_CONTENTS:
            path = store.run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    return info


def generation_settings(config: BenchRunConfig, cls: type) -> dict[str, Any]:
    """Everything that shapes the frames a run stores: a rerun with any of it changed is another run."""
    weights = config.weights
    digest = None
    if weights and Path(weights).is_file():
        from sfi_core.weights.lock import file_digest

        digest = file_digest(Path(weights))
    return {
        "model": config.model,
        "model_version": str(getattr(cls, "version", "")),
        "model_options": dict(config.model_options),
        "weights": weights,
        "weights_sha256": digest,
        "seed": config.seed,
        "store_format": config.store_format,
        "resample_mode": config.resample_mode,
    }
