"""Import (`sfi-bench import`): videos made elsewhere (GI, FCVG, Kling...) stored as a run directory to score."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sfi_bench.generate import RunSummary, now
from sfi_bench.run_dir import check_run_dir
from sfi_bench.storage import (
    STATUS_ERROR,
    STATUS_MISSING,
    STATUS_OK,
    ClipRecord,
    FrameStore,
    read_image_folder,
)
from sfi_bench.testset import TestClip, fit_to_clip, load_test_clips, read_conditions

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".gif")


def find_output(folder: Path, clip_id: str) -> Path | None:
    """`{clip_id}.mp4` (or another video suffix), or a `{clip_id}/` folder of frames."""
    for suffix in VIDEO_SUFFIXES:
        candidate = folder / f"{clip_id}{suffix}"
        if candidate.is_file():
            return candidate
    candidate = folder / clip_id
    return candidate if candidate.is_dir() else None


def read_output(path: Path) -> np.ndarray:
    if path.is_dir():
        return read_image_folder(path)
    from sfi_core.video import decode_all

    return decode_all(path)


def import_clip(
    store: FrameStore, clip: TestClip, model: str, folder: Path, store_format: str, resample_mode: str
) -> ClipRecord:
    """Find, read, fit and store one clip's outside output; the record says what happened."""
    base = dict(
        clip_id=clip.clip_id,
        model=model,
        model_version="imported",
        num_frames=clip.num_frames,
        prompt=clip.prompt,
        source="import",
    )
    source = find_output(folder, clip.clip_id)
    if source is None:
        reason = f"no {clip.clip_id}.mp4 (or frame folder) in {folder}"
        return ClipRecord(status=STATUS_MISSING, **base, reason=reason)
    first, _ = read_conditions(clip)
    try:
        frames = read_output(source)
    except (OSError, ValueError) as err:
        return ClipRecord(status=STATUS_ERROR, **base, reason=f"could not read {source}: {err}")
    fitted = fit_to_clip(frames, clip.num_frames, first.shape[0], first.shape[1], resample_mode)
    return ClipRecord(
        status=STATUS_OK,
        **base,
        frames_path=store.write_frames(clip.clip_id, fitted.frames, clip.fps),
        store_format=store_format,
        width=first.shape[1],
        height=first.shape[0],
        native_num_frames=fitted.native_num_frames,
        resampled=fitted.resampled,
        resample_mode=resample_mode if fitted.resampled else None,
        resized_from=fitted.resized_from,
        info={"imported_from": str(source)},
    )


def import_outputs(
    model: str,
    folder: Path,
    clips_manifest: Path,
    out: Path,
    store_format: str = "ffv1",
    resample_mode: str = "nearest",
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RunSummary:
    """Store videos made by another tool as a run directory that `score` can read."""
    import sfi_bench

    start = time.perf_counter()
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"import folder {folder} does not exist; give the folder of {{clip_id}}.mp4 files"
        )
    store = FrameStore(out, store_format)
    previous = check_run_dir(store, model, Path(clips_manifest), overwrite)
    clips = load_test_clips(clips_manifest)
    summary = RunSummary(model=model, clips_total=len(clips))
    store.write_run_info(
        {
            "kind": "import",
            "model": model,
            "model_class": None,
            "model_version": "imported",
            "import_dir": str(folder.resolve()),
            "clips_manifest": str(Path(clips_manifest).resolve()),
            "store_format": store_format,
            "resample_mode": resample_mode,
            "sfi_bench_version": sfi_bench.__version__,
            "created": (previous or {}).get("created") or now(),
            "updated": now(),
        }
    )
    for clip in clips:
        if not overwrite and store.is_finished(clip.clip_id):
            summary.already_done += 1
            continue
        record = import_clip(store, clip, model, folder, store_format, resample_mode)
        store.write_record(record)
        summary.count(record)
        if progress and record.status == STATUS_OK:
            progress(1)
    store.write_generations_table()
    summary.seconds_total = time.perf_counter() - start
    return summary
