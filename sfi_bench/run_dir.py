"""A run directory's identity: which model, test set and settings made the clips it holds."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from sfi_bench.storage import FrameStore
from sfi_core.driver import changed_settings, record_settings, recorded_settings

log = logging.getLogger(__name__)

# What a run directory holds besides run.json: per-clip records, frames, scores, the parts and tables.
RUN_CONTENTS = ("meta", "frames", "scores", "work", "generations.parquet", "scores.parquet")


def check_run_dir(
    store: FrameStore, model: str, clips: Path, overwrite: bool, settings: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The run.json already there (None for a new directory); refuses another model or test set.

    settings: what shapes the generated frames (`generate.generation_settings`). The shared driver records them
    beside the generate stage's parts and refuses a rerun with others in one line naming the changed
    keys; with --overwrite the whole run (frames, scores, ledger) is emptied here first, so a rerun
    never leaves a run that is half one setting and half another.
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
    adopt_legacy_records(store, info)
    held = recorded_settings(store.run_dir, GENERATE_STAGE)
    changes = changed_settings(held, settings) if settings is not None and held is not None else []
    # Without --overwrite the driver refuses the changed settings itself (one line naming the keys).
    if changes and overwrite and store.records():
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


GENERATE_STAGE = "generate"  # the stage whose parts are the run's records (sfi_bench.storage.LEDGER)


def adopt_legacy_records(store: FrameStore, info: dict[str, Any]) -> int:
    """A run directory from before the ledger (meta/{clip_id}.json, settings in run.json): its records
    become one part and its settings the recorded ones, so a rerun resumes it and checks them."""
    if any(store.ledger_dir.glob("part-*.parquet")) or not (store.run_dir / "meta").is_dir():
        return 0
    records = store.records()  # read from meta/ while the ledger is empty
    store.write_records(records)
    if info.get("settings") is not None:
        record_settings(store.run_dir, GENERATE_STAGE, info["settings"])
    log.info("%s: %d records of meta/ adopted into %s", store.run_dir, len(records), store.ledger_dir)
    return len(records)
