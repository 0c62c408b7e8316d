"""Generation (`sfi-bench run`): every model gets the same inputs per test clip; outputs stored losslessly.

For every test clip the model gets the first frame, the last frame, the caption and N; it returns N
frames, endpoints included. Generation is a Stage (sfi_core.stage) over shards of clips of one N and
size, so the same code runs in this process (`--executor local`), on a Ray pool with one model replica
per worker (`--executor ray --gpus-per-worker 1`), or on one slice of a SLURM array (`--shard I/N`).
Each clip's record (storage.py) marks it finished, so a rerun -- on any number of workers -- skips it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.run_dir import check_run_dir
from sfi_bench.storage import (
    RECORD_SCHEMA,
    STATUS_ERROR,
    STATUS_MISSING,
    STATUS_OK,
    STATUS_SKIPPED,
    ClipRecord,
    FrameStore,
)
from sfi_bench.testset import ShardSpec, TestClip, fit_to_clip, load_test_clips, read_conditions
from sfi_core.config import ExecutionConfig, setting, validate
from sfi_core.driver import normalize_settings, run_stage
from sfi_core.executors import DEFAULT_EXECUTOR, EXECUTORS
from sfi_core.stage import Stage

log = logging.getLogger(__name__)

# Errors a model may raise on one clip without stopping the run: recorded with the clip, retried on rerun.
CLIP_ERRORS = (RuntimeError, ValueError, OSError)


@dataclass
class ParallelConfig(ExecutionConfig):
    """The bench's execution settings: the ones every command shares (sfi_core.config.ExecutionConfig:
    executor, address, --num-cpus workers, --gpus-per-worker), plus one slice of an array job.

    The bench runs on the one default executor, as every command: Ray, in-process unless --address.
    Its stages hold model replicas (`Stage.replica`): one per GPU where there are GPUs, else one per
    node with all its CPUs, never one 14B replica per CPU; `--workers N` asks for N replicas of one CPU
    each, `--gpus-per-worker G` for G GPUs each.
    """

    executor: str = setting(
        DEFAULT_EXECUTOR,
        "ray (a pool of model replicas: one per GPU, else one per node; in-process unless --address) "
        "or local (one process).",
        EXECUTORS,
    )
    shard: str | None = setting(
        None,
        "Do only shard I of N (every N-th clip from the I-th), e.g. --shard "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; finished clips are skipped on any shard.",
    )

    def __post_init__(self) -> None:
        # Checked before any work (a typo must not surface only once clips are pending).
        validate(self)
        if self.gpus_per_worker < 0 or (self.num_cpus is not None and self.num_cpus < 1):
            raise ValueError("--gpus-per-worker must be >= 0 and --num-cpus (workers) >= 1")
        ShardSpec.parse(self.shard)

    @property
    def workers(self) -> int | None:
        """Ray workers started here (None: one per CPU, or per GPU with --gpus-per-worker)."""
        return self.num_cpus

    @property
    def gpus_per_worker(self) -> float:
        return float(self.num_gpus or 0.0)


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
    parallel: ParallelConfig = field(default_factory=ParallelConfig)


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

    def count(self, record: ClipRecord) -> None:
        """Add one record written by this invocation."""
        if record.status == STATUS_OK:
            self.generated += 1
            self.seconds_model_forward += record.seconds or 0.0
        elif record.status == STATUS_SKIPPED:
            self.skipped += 1
        elif record.status == STATUS_MISSING:
            self.missing += 1
        else:
            self.errors += 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "seconds_per_clip": self.seconds_per_clip,
            "harness_overhead_share": self.harness_overhead_share,
        }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def batches(clips: list[TestClip], batch_size: int) -> Iterator[list[TestClip]]:
    """Clips of one N and one size together (a batch must stack), in manifest order within a group."""
    groups: dict[tuple, list[TestClip]] = {}
    for clip in clips:
        groups.setdefault((clip.num_frames, clip.width, clip.height), []).append(clip)
    for group in groups.values():
        for start in range(0, len(group), max(1, batch_size)):
            yield group[start : start + batch_size]


class GenerateStage(Stage):
    """One model replica: `setup` loads it once per worker, `run` turns clip rows into record rows."""

    name = "generate"
    key = "clip_id"

    def __init__(
        self, config: BenchRunConfig, model: SFIModel | None = None, settings: dict | None = None
    ) -> None:
        self.config = config
        self.model = model
        self.num_gpus = config.parallel.gpus_per_worker
        # --gpus-per-worker on a cluster without GPUs would quietly run every replica on CPU.
        self.gpus_required = config.parallel.gpus_per_worker > 0
        # Sized by the machine (one replica per GPU, else one per node) unless --workers N asks for N.
        self.replica = config.parallel.workers is None
        self.shard_size = max(1, config.batch_size)
        self.seconds_model_load = 0.0
        self._settings = settings or {}

    def settings(self) -> dict:
        """What shapes the stored frames (generation_settings): the driver records and checks it."""
        return self._settings

    @property
    def store(self) -> FrameStore:
        return FrameStore(self.config.out, self.config.store_format)

    def setup(self) -> None:
        if self.model is None:
            from sfi_bench.models import make_model

            options = dict(self.config.model_options)
            if self.config.weights_dir:
                options.setdefault("weights_dir", self.config.weights_dir)
            self.model = make_model(
                self.config.model, device=self.config.device, weights=self.config.weights, **options
            )
        start = time.perf_counter()
        self.model.load()
        self.seconds_model_load = time.perf_counter() - start

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        clips = [row["clip"] for row in rows]
        for batch in batches(clips, self.config.batch_size):
            for record in self.run_batch(batch):
                yield record.to_row()

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
        return record  # its row goes into the shard's part file: the run's ledger

    def run_batch(self, batch: list[TestClip]) -> list[ClipRecord]:
        records: list[ClipRecord] = []
        requests: list[tuple[TestClip, SFIRequest]] = []
        skip_reason = getattr(self.model, "skip_reason", None)
        for clip in batch:
            try:
                first, last = read_conditions(clip)
            except (OSError, ValueError) as err:
                records.append(
                    self._record(clip, STATUS_ERROR, reason=f"could not read the condition frames: {err}")
                )
                continue
            request = SFIRequest(clip.clip_id, first, last, clip.prompt, clip.num_frames, self.config.seed)
            reason = skip_reason(request) if skip_reason else None
            if reason:
                records.append(self._record(clip, STATUS_SKIPPED, reason=reason))
                continue
            requests.append((clip, request))
        if not requests:
            return records
        forward_start = time.perf_counter()
        try:
            results = self.model.generate_batch([r for _, r in requests])
        except CLIP_ERRORS as err:
            log.warning("model %s failed on %s: %s", self.config.model, [c.clip_id for c, _ in requests], err)
            reason = f"{type(err).__name__}: {err}"
            return records + [self._record(clip, STATUS_ERROR, reason=reason) for clip, _ in requests]
        seconds = time.perf_counter() - forward_start
        if len(results) != len(requests):
            raise RuntimeError(
                f"{self.config.model}.generate_batch returned {len(results)} results "
                f"for {len(requests)} requests"
            )
        for (clip, request), result in zip(requests, results, strict=True):
            records.append(self._store_result(clip, request, result, seconds / len(requests), len(requests)))
        return records

    def _store_result(
        self, clip: TestClip, request: SFIRequest, result: SFIResult, seconds: float, batch_size: int
    ) -> ClipRecord:
        height, width = request.first_frame.shape[:2]
        fitted = fit_to_clip(result.frames, clip.num_frames, height, width, self.config.resample_mode)
        relpath = self.store.write_frames(clip.clip_id, fitted.frames, clip.fps)
        return self._record(
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
            info=dict(result.info),
        )


class BenchRunner:
    """Run one model over the test clips (or one shard of them) into one run directory."""

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

    def select_clips(self) -> list[TestClip]:
        config = self.config
        clips = load_test_clips(config.clips, set(config.frame_counts) if config.frame_counts else None)
        if config.limit is not None:
            clips = clips[: config.limit]
        return ShardSpec.parse(config.parallel.shard).select(clips)

    def run(self) -> RunSummary:
        """Generate the pending clips through the shared driver (sfi_core.driver.run_stage): the
        stage's settings are recorded beside its parts and a rerun with others is refused (or, with
        --overwrite, the run is emptied and redone); the parts are the per-clip records."""
        config = self.config
        start = time.perf_counter()
        clips = self.select_clips()
        settings = generation_settings(config, self._model_class())
        previous = check_run_dir(self.store, config.model, Path(config.clips), config.overwrite, settings)
        stage = GenerateStage(config, self.model, settings)
        self.store.write_run_info(self._run_info(previous, stage))
        # Clips of one N and size side by side: a shard then fills the model's batches.
        ordered = sorted(clips, key=lambda c: (c.num_frames, c.width or 0, c.height or 0, c.clip_id))
        rows = [{"clip_id": c.clip_id, "clip": c} for c in ordered]
        parallel = config.parallel
        run = ExecutionConfig(
            executor=parallel.executor,
            address=parallel.address,
            num_cpus=parallel.workers,
            shard_size=stage.shard_size,
        )
        pending = [c for c in clips if config.overwrite or not self.store.is_finished(c.clip_id)]
        done = [len(clips) - len(pending)]  # the driver reports the clips done earlier first: not progress

        def progress(finished: int, total: int) -> None:
            if self.progress is not None and finished > done[0]:
                self.progress(finished - done[0])
            done[0] = max(done[0], finished)

        # --overwrite redoes this invocation's clips only (check_run_dir emptied the run if the settings
        # changed): another array task's finished clips stay.
        redo = {c.clip_id for c in clips} if config.overwrite else None
        stage_summary = run_stage(stage, rows, self.store.run_dir, RECORD_SCHEMA, run, progress, redo=redo)
        summary = RunSummary(model=config.model, clips_total=len(clips), already_done=stage_summary.skipped)
        summary.seconds_model_load = stage.seconds_model_load  # local executor only: Ray's is remote
        self.store = FrameStore(config.out, config.store_format)  # the records the workers wrote
        for clip in pending:
            record = self.store.read_record(clip.clip_id)
            if record is not None:
                summary.count(record)
        self.store.write_generations_table()
        summary.seconds_total = time.perf_counter() - start
        self.store.write_run_info(self._run_info(previous, stage) | {"last_invocation": summary.to_dict()})
        return summary

    def _model_class(self) -> type:
        from sfi_bench.models import model_class

        return type(self.model) if self.model is not None else model_class(self.config.model)

    def _run_info(self, previous: dict[str, Any] | None, stage: GenerateStage) -> dict[str, Any]:
        import sfi_bench

        cls = type(stage.model) if stage.model is not None else self._model_class()
        return {
            "kind": "run",
            "model": self.config.model,
            "model_class": f"{cls.__module__}:{cls.__name__}",
            "model_version": str(getattr(cls, "version", "")),
            "model_options": self.config.model_options,
            "weights": self.config.weights,
            "clips_manifest": str(Path(self.config.clips).resolve()),
            "store_format": self.config.store_format,
            "resample_mode": self.config.resample_mode,
            "seed": self.config.seed,
            "device": self.config.device,
            "batch_size": self.config.batch_size,
            "settings": normalize_settings(generation_settings(self.config, cls)),
            "sfi_bench_version": sfi_bench.__version__,
            "created": (previous or {}).get("created") or now(),
            "updated": now(),
        }


def run_model(config: BenchRunConfig, progress: Callable[[int], None] | None = None) -> RunSummary:
    return BenchRunner(config, progress=progress).run()
