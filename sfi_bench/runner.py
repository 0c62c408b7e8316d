"""The SFIBench harness: give every model the same test inputs, store what it makes, score it.

`run_model` (sfi-bench run): for every test clip the model gets the first frame, the last frame, the
caption and N; it returns N frames, endpoints included. Frames are stored losslessly with a per-clip
record (storage.py); a rerun skips finished clips. `import_outputs` (sfi-bench import) stores videos
made elsewhere the same way. `score_run` (sfi-bench score) decodes each clip and its ground truth once
and calls the metric suite.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.models.resample import resample_frames
from sfi_bench.storage import (
    STATUS_ERROR,
    STATUS_MISSING,
    STATUS_OK,
    STATUS_SKIPPED,
    ClipRecord,
    FrameStore,
    read_image_folder,
)

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".gif")
# Errors a model may raise on one clip without stopping the run: recorded with the clip, retried on rerun.
CLIP_ERRORS = (RuntimeError, ValueError, OSError)


# ---------------------------------------------------------------- test clips


@dataclass
class TestClip:
    """One row of the test manifest, paths made absolute."""

    __test__ = False  # not a pytest class

    clip_id: str
    num_frames: int
    width: int | None
    height: int | None
    fps: float
    clip_path: Path | None
    first_frame_path: Path | None
    last_frame_path: Path | None
    prompt: str = ""
    video_id: str | None = None


def _resolve(root: Path, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else root / path


def load_test_clips(manifest: Path, frame_counts: set[int] | None = None) -> list[TestClip]:
    """Clips with status ok (or no status column) from any CLIPS-schema parquet; captions become prompts."""
    import pyarrow.parquet as pq

    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"test manifest {manifest} not found. Make one with `sfi-data split DIR` (DIR/test.parquet)."
        )
    rows = pq.read_table(manifest).to_pylist()
    root = manifest.parent
    clips = []
    for row in rows:
        if row.get("status") not in (None, "ok"):
            continue
        num_frames = int(row["num_frames"])
        if frame_counts and num_frames not in frame_counts:
            continue
        clips.append(
            TestClip(
                clip_id=str(row["clip_id"]),
                num_frames=num_frames,
                width=row.get("width"),
                height=row.get("height"),
                fps=float(row.get("fps") or 25.0),
                clip_path=_resolve(root, row.get("clip_path")),
                first_frame_path=_resolve(root, row.get("first_frame_path")),
                last_frame_path=_resolve(root, row.get("last_frame_path")),
                prompt=row.get("caption") or "",
                video_id=row.get("video_id"),
            )
        )
    if len({c.clip_id for c in clips}) != len(clips):
        raise ValueError(f"{manifest}: clip_id values are not unique")
    return clips


def read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"could not read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_conditions(clip: TestClip) -> tuple[np.ndarray, np.ndarray]:
    """The lossless PNG endpoints; the clip's own first/last frames where the manifest has no PNGs."""
    if (
        clip.first_frame_path
        and clip.last_frame_path
        and clip.first_frame_path.is_file()
        and clip.last_frame_path.is_file()
    ):
        return read_image(clip.first_frame_path), read_image(clip.last_frame_path)
    if clip.clip_path is None or not clip.clip_path.is_file():
        raise FileNotFoundError(f"clip {clip.clip_id}: neither condition PNGs nor the clip file exist")
    from sfi_core.video import read_frames

    frames = read_frames(clip.clip_path, [0, clip.num_frames - 1])
    return frames[0], frames[1]


def read_ground_truth(clip: TestClip) -> np.ndarray | None:
    if clip.clip_path is None or not clip.clip_path.is_file():
        return None
    from sfi_core.video import decode_all

    return decode_all(clip.clip_path)


# ---------------------------------------------------------------- fitting outputs to the clip


@dataclass
class Fitted:
    frames: np.ndarray
    native_num_frames: int
    resampled: bool
    resized_from: str | None


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    shrink = frames.shape[1] * frames.shape[2] > height * width
    mode = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=mode) for f in frames])


def fit_to_clip(frames: np.ndarray, num_frames: int, height: int, width: int, resample_mode: str) -> Fitted:
    """Resample in time to N (endpoints kept) and resize to the clip's size, saying what was done."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"a model must return (N, H, W, 3) frames, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"a model must return uint8 frames, got {frames.dtype}")
    native = len(frames)
    resampled = native != num_frames
    if resampled:
        frames = resample_frames(frames, num_frames, resample_mode)
    resized_from = None
    if frames.shape[1:3] != (height, width):
        resized_from = f"{frames.shape[2]}x{frames.shape[1]}"
        frames = resize_frames(frames, height, width)
    return Fitted(np.ascontiguousarray(frames), native, resampled, resized_from)


# ---------------------------------------------------------------- running a model


@dataclass
class BenchRunConfig:
    model: str
    clips: Path
    out: Path
    device: str = "auto"
    batch_size: int = 1
    seed: int = 0
    store_format: str = "ffv1"
    resample_mode: str = "nearest"  # nearest | linear
    weights: str | None = None
    weights_dir: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    frame_counts: tuple[int, ...] | None = None
    limit: int | None = None
    overwrite: bool = False


@dataclass
class RunSummary:
    model: str
    clips_total: int = 0
    already_done: int = 0
    generated: int = 0
    skipped: int = 0
    errors: int = 0
    missing: int = 0
    seconds_total: float = 0.0
    seconds_model_load: float = 0.0
    seconds_model_forward: float = 0.0  # inside generate/generate_batch only

    @property
    def seconds_per_clip(self) -> float | None:
        return self.seconds_total / self.generated if self.generated else None

    @property
    def harness_overhead_share(self) -> float | None:
        """Everything but the model's forward pass (and load) as a share of the wall time."""
        if self.seconds_total <= 0 or not self.generated:
            return None
        return (
            max(0.0, self.seconds_total - self.seconds_model_forward - self.seconds_model_load)
            / self.seconds_total
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "seconds_per_clip": self.seconds_per_clip,
            "harness_overhead_share": self.harness_overhead_share,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_run_dir(store: FrameStore, model: str, clips: Path, overwrite: bool) -> dict[str, Any] | None:
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
    return info


def _batches(clips: list[TestClip], batch_size: int) -> Iterator[list[TestClip]]:
    """Clips of one N and one size together (a batch must stack), in manifest order within a group."""
    groups: dict[tuple, list[TestClip]] = {}
    for clip in clips:
        groups.setdefault((clip.num_frames, clip.width, clip.height), []).append(clip)
    for group in groups.values():
        for start in range(0, len(group), max(1, batch_size)):
            yield group[start : start + batch_size]


class BenchRunner:
    """Run one model over the test clips into one run directory."""

    def __init__(
        self,
        config: BenchRunConfig,
        model: SFIModel | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.progress = progress
        self.store = FrameStore(config.out, config.store_format)

    def _make_model(self) -> SFIModel:
        from sfi_bench.models import make_model

        options = dict(self.config.model_options)
        if self.config.weights_dir:
            options.setdefault("weights_dir", self.config.weights_dir)
        return make_model(
            self.config.model, device=self.config.device, weights=self.config.weights, **options
        )

    def _record(self, clip: TestClip, status: str, **values: Any) -> ClipRecord:
        record = ClipRecord(
            clip_id=clip.clip_id,
            model=self.config.model,
            model_version=str(getattr(self.model, "version", "")),
            status=status,
            num_frames=clip.num_frames,
            seed=self.config.seed,
            prompt=clip.prompt,
            **values,
        )
        self.store.write_record(record)
        return record

    def run(self) -> RunSummary:
        config = self.config
        start = time.perf_counter()
        clips = load_test_clips(config.clips, set(config.frame_counts) if config.frame_counts else None)
        if config.limit is not None:
            clips = clips[: config.limit]
        previous = _check_run_dir(self.store, config.model, Path(config.clips), config.overwrite)
        summary = RunSummary(model=config.model, clips_total=len(clips))
        pending = [c for c in clips if config.overwrite or not self.store.is_finished(c.clip_id)]
        summary.already_done = len(clips) - len(pending)
        if self.model is None:
            self.model = self._make_model()
        self.store.write_run_info(self._run_info(previous))
        if pending:
            load_start = time.perf_counter()
            self.model.load()
            summary.seconds_model_load = time.perf_counter() - load_start
        for batch in _batches(pending, config.batch_size):
            self._run_batch(batch, summary)
        self.store.write_generations_table()
        summary.seconds_total = time.perf_counter() - start
        self.store.write_run_info(self._run_info(previous) | {"last_invocation": summary.to_dict()})
        return summary

    def _run_info(self, previous: dict[str, Any] | None) -> dict[str, Any]:
        import sfi_bench

        model = self.model
        return {
            "kind": "run",
            "model": self.config.model,
            "model_class": f"{type(model).__module__}:{type(model).__name__}",
            "model_version": str(getattr(model, "version", "")),
            "model_options": self.config.model_options,
            "weights": self.config.weights,
            "clips_manifest": str(Path(self.config.clips).resolve()),
            "store_format": self.config.store_format,
            "resample_mode": self.config.resample_mode,
            "seed": self.config.seed,
            "device": self.config.device,
            "batch_size": self.config.batch_size,
            "sfi_bench_version": sfi_bench.__version__,
            "created": (previous or {}).get("created") or _now(),
            "updated": _now(),
        }

    def _run_batch(self, batch: list[TestClip], summary: RunSummary) -> None:
        requests: list[tuple[TestClip, SFIRequest]] = []
        skip_reason = getattr(self.model, "skip_reason", None)
        for clip in batch:
            try:
                first, last = read_conditions(clip)
            except (OSError, ValueError) as err:
                self._record(clip, STATUS_ERROR, reason=f"could not read the condition frames: {err}")
                summary.errors += 1
                continue
            request = SFIRequest(clip.clip_id, first, last, clip.prompt, clip.num_frames, self.config.seed)
            reason = skip_reason(request) if skip_reason else None
            if reason:
                self._record(clip, STATUS_SKIPPED, reason=reason)
                summary.skipped += 1
                continue
            requests.append((clip, request))
        if not requests:
            return
        forward_start = time.perf_counter()
        try:
            results = self.model.generate_batch([r for _, r in requests])
        except CLIP_ERRORS as err:
            for clip, _ in requests:
                self._record(clip, STATUS_ERROR, reason=f"{type(err).__name__}: {err}")
            summary.errors += len(requests)
            log.warning("model %s failed on %s: %s", self.config.model, [c.clip_id for c, _ in requests], err)
            return
        seconds = time.perf_counter() - forward_start
        summary.seconds_model_forward += seconds
        if len(results) != len(requests):
            raise RuntimeError(
                f"{self.config.model}.generate_batch returned {len(results)} results "
                f"for {len(requests)} requests"
            )
        for (clip, request), result in zip(requests, results, strict=True):
            self._store_result(clip, request, result, seconds / len(requests), len(requests))
            summary.generated += 1
            if self.progress:
                self.progress(1)

    def _store_result(
        self, clip: TestClip, request: SFIRequest, result: SFIResult, seconds: float, batch_size: int
    ) -> None:
        height, width = request.first_frame.shape[:2]
        fitted = fit_to_clip(result.frames, clip.num_frames, height, width, self.config.resample_mode)
        relpath = self.store.write_frames(clip.clip_id, fitted.frames, clip.fps)
        info = dict(result.info)
        self._record(
            clip,
            STATUS_OK,
            frames_path=relpath,
            store_format=self.store.store_format,
            width=width,
            height=height,
            seconds=round(seconds, 6),
            batch_size=batch_size,
            native_num_frames=fitted.native_num_frames,
            resampled=fitted.resampled,
            resample_mode=self.config.resample_mode if fitted.resampled else None,
            resized_from=fitted.resized_from,
            info=info,
        )


def run_model(config: BenchRunConfig, progress: Callable[[int], None] | None = None) -> RunSummary:
    return BenchRunner(config, progress=progress).run()


# ---------------------------------------------------------------- importing outputs made elsewhere


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
    """Store videos made by another tool (GI, FCVG, Kling...) as a run directory that `score` can read."""
    import sfi_bench

    start = time.perf_counter()
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"import folder {folder} does not exist")
    store = FrameStore(out, store_format)
    previous = _check_run_dir(store, model, Path(clips_manifest), overwrite)
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
            "created": (previous or {}).get("created") or _now(),
            "updated": _now(),
        }
    )
    for clip in clips:
        if not overwrite and store.is_finished(clip.clip_id):
            summary.already_done += 1
            continue
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
            store.write_record(
                ClipRecord(
                    status=STATUS_MISSING,
                    **base,
                    reason=f"no {clip.clip_id}.mp4 (or frame folder) in {folder}",
                )
            )
            summary.missing += 1
            continue
        first, _ = read_conditions(clip)
        try:
            frames = read_output(source)
        except (OSError, ValueError, FileNotFoundError) as err:
            store.write_record(
                ClipRecord(status=STATUS_ERROR, **base, reason=f"could not read {source}: {err}")
            )
            summary.errors += 1
            continue
        fitted = fit_to_clip(frames, clip.num_frames, first.shape[0], first.shape[1], resample_mode)
        relpath = store.write_frames(clip.clip_id, fitted.frames, clip.fps)
        store.write_record(
            ClipRecord(
                status=STATUS_OK,
                **base,
                frames_path=relpath,
                store_format=store_format,
                width=first.shape[1],
                height=first.shape[0],
                native_num_frames=fitted.native_num_frames,
                resampled=fitted.resampled,
                resample_mode=resample_mode if fitted.resampled else None,
                resized_from=fitted.resized_from,
                info={"imported_from": str(source)},
            )
        )
        summary.generated += 1
        if progress:
            progress(1)
    store.write_generations_table()
    summary.seconds_total = time.perf_counter() - start
    return summary


# ---------------------------------------------------------------- scoring


@dataclass
class ScoreOutputs:
    clips_path: Path
    summary_path: Path
    num_scored: int


def iter_samples(store: FrameStore, clips: list[TestClip], model: str) -> Iterator:
    """One ClipSample per generated clip; each clip and its ground truth decoded once, lazily."""
    from sfi_bench.metrics.base import ClipSample

    by_id = {c.clip_id: c for c in clips}
    for record in store.records():
        if record.status != STATUS_OK or record.clip_id not in by_id:
            continue
        clip = by_id[record.clip_id]
        generated = store.read_frames(record.frames_path)
        first, last = read_conditions(clip)
        reference = read_ground_truth(clip)
        extra: dict[str, Any] = {"model": model}
        if reference is not None and (
            len(reference) != clip.num_frames or reference.shape[1:3] != generated.shape[1:3]
        ):
            extra["reference_note"] = (
                f"ground truth has {len(reference)} frames of {reference.shape[2]}x"
                f"{reference.shape[1]}; fitted to the generated clip"
            )
            reference = fit_to_clip(
                reference, clip.num_frames, generated.shape[1], generated.shape[2], "nearest"
            ).frames
        yield ClipSample(
            clip_id=clip.clip_id,
            num_frames=clip.num_frames,
            generated=generated,
            reference=reference,
            first_condition=first,
            last_condition=last,
            prompt=clip.prompt,
            fps=clip.fps,
            extra=extra,
        )


def score_run(
    run_dir: Path,
    metrics: list[str] | None = None,
    device: str = "auto",
    weights_dir: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScoreOutputs:
    """Run the metric suite on a run directory; writes scores_clips.parquet and scores_summary.parquet."""
    import pyarrow as pa

    from sfi_bench.metrics.suite import evaluate
    from sfi_core.manifest import write_table

    store = FrameStore(run_dir)
    info = store.read_run_info()
    model = info["model"]
    clips = load_test_clips(Path(info["clips_manifest"]))
    result = evaluate(
        iter_samples(store, clips, model), metrics, device=device, weights_dir=weights_dir, progress=progress
    )
    # How many test clips each group had, so a table can say "3 of 6 clips" (FILM skips, import misses).
    totals: dict[str, int] = {"All": len(clips)}
    for clip in clips:
        totals[str(clip.num_frames)] = totals.get(str(clip.num_frames), 0) + 1
    per_clip = [{"model": model, **row} for row in result.per_clip]
    summary = [
        {"model": model, **row, "clips_in_test": totals.get(row["group"], 0)} for row in result.summary
    ]
    clips_path, summary_path = (
        Path(run_dir) / "scores_clips.parquet",
        Path(run_dir) / "scores_summary.parquet",
    )
    write_table(
        pa.Table.from_pylist(per_clip) if per_clip else pa.table({"model": pa.array([], pa.string())}),
        clips_path,
    )
    write_table(pa.Table.from_pylist(summary), summary_path)
    (Path(run_dir) / "scores.json").write_text(
        json.dumps({"metrics": metrics, "scored_at": _now(), "num_scored": len(per_clip)}, indent=1)
    )
    return ScoreOutputs(clips_path, summary_path, len(per_clip))
