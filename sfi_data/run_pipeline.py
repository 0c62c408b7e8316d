"""`sfi-data run PIPELINE.yaml`: the chain (scenes ->) filter -> cut -> caption -> split -> stats from one file.

A pipeline is a list of steps looked up in one `Registry`; every step runs its stage through the
shared driver (part files, one merge, resume, settings recorded next to the parts). The whole file is
checked before the first step runs: unknown keys in any section, wrong types, unknown choices, and
(for the curation stages) settings that differ from the finished work in the output folder. To add a
step, subclass `PipelineStep` and register it in `STEPS`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfi_core.driver import check_settings
from sfi_core.registry import Registry
from sfi_data.config import (
    CutConfig,
    FilterStageConfig,
    RunConfig,
    ScenesConfig,
    apply_overrides,
    load_yaml,
)
from sfi_data.config_dataset import CaptionConfig, CategorizeConfig, ExportConfig, SplitConfig, StatsConfig

log = logging.getLogger("sfi_data")

DEFAULT_STEPS = ["filter", "cut", "caption", "categorize", "split", "stats", "export"]
# Top-level keys of a pipeline file with their types; every other key is a step's own section.
GLOBAL_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "out": str,
    "inputs": list,
    "list_files": list,
    "steps": list,
    "run": dict,
    "weights_dir": (str, type(None)),
}

ProgressFactory = Callable[[str], contextlib.AbstractContextManager]


@contextlib.contextmanager
def _no_progress(label: str) -> Iterator[None]:
    yield None


@dataclass
class PipelineContext:
    spec: dict[str, Any]
    out_dir: Path
    run: RunConfig
    weights_dir: str | None = None
    progress: ProgressFactory = _no_progress
    # Input rows handed from one step to the next (scene segments for the filter).
    handoff: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        value = self.spec.get(name) or {}
        if not isinstance(value, dict):
            raise ValueError(f"pipeline section {name!r} must be a mapping, not {value!r}")
        return dict(value)

    @property
    def inputs(self) -> list[str]:
        return [str(p) for p in self.spec.get("inputs") or []]

    @property
    def list_files(self) -> list[str]:
        return [str(p) for p in self.spec.get("list_files") or []]


class PipelineStep:
    """One link of the chain: `configure` checks its section, `run` does the work (resumably)."""

    name: str = "step"

    def configure(self, ctx: PipelineContext) -> Any:
        """The step's settings from its section, checked (ValueError naming the bad key)."""
        return None

    def preflight(self, ctx: PipelineContext, config: Any) -> None:
        """Refuse, before any step runs, settings that differ from the finished work (default: none)."""

    def run(self, ctx: PipelineContext, config: Any) -> dict[str, Any]:
        raise NotImplementedError

    def complete(self, summary: dict[str, Any]) -> bool:
        """Whether the run left nothing to redo (a step with failures to retry says False)."""
        return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _summary_dict(summary: Any) -> dict[str, Any]:
    """A step's summary as plain JSON types."""
    return _jsonable(dataclasses.asdict(summary) if dataclasses.is_dataclass(summary) else dict(summary))


def _with_run(section: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    """A step's own overwrite follows the pipeline's `run:` unless set (every step runs on `run:`'s
    executor, address and CPUs)."""
    return {"overwrite": ctx.run.overwrite} | section if ctx.run.overwrite else section


class ScenesStep(PipelineStep):
    """`scenes:` holds ScenesConfig fields. List "scenes" before "filter" in `steps:` and the filter
    takes the single-shot segments of the inputs instead of the whole files."""

    name = "scenes"

    def configure(self, ctx: PipelineContext) -> ScenesConfig:
        from sfi_data.stages.scenes import detector_spec

        config = apply_overrides(ScenesConfig(), ctx.section("scenes"), "scenes.")
        detector_spec(config.detector)  # an unknown detector fails with the others
        return config

    def preflight(self, ctx: PipelineContext, config: ScenesConfig) -> None:
        from sfi_data.stages.scenes import ScenesStage

        if not ctx.run.overwrite:
            check_settings(ctx.out_dir, ScenesStage.name, ScenesStage(ctx.out_dir, config).settings())

    def run(self, ctx: PipelineContext, config: ScenesConfig) -> dict[str, Any]:
        from sfi_data.scenes import run_scenes

        with ctx.progress("scenes") as progress:
            summary = run_scenes(ctx.inputs, ctx.out_dir, config, ctx.run, ctx.list_files, progress)
        ctx.handoff["videos"] = scene_videos(ctx)
        return _summary_dict(summary)


def scene_videos(ctx: PipelineContext) -> list[dict[str, Any]]:
    """The filter's input rows: the ok segments of DIR/scenes.parquet."""
    from sfi_data.scenes import SCENES_MANIFEST, scenes_manifest, segments_as_videos

    return segments_as_videos(scenes_manifest(ctx.out_dir / SCENES_MANIFEST), ctx.out_dir)[0]


class FilterStep(PipelineStep):
    name = "filter"

    def configure(self, ctx: PipelineContext) -> FilterStageConfig:
        return apply_overrides(FilterStageConfig(), ctx.section("filter"), "filter.")

    def preflight(self, ctx: PipelineContext, config: FilterStageConfig) -> None:
        from sfi_data.pipeline import filter_stage

        if not ctx.run.overwrite:
            stage = filter_stage(ctx.out_dir, config, ctx.weights_dir)
            check_settings(ctx.out_dir, stage.name, stage.settings())

    def run(self, ctx: PipelineContext, config: FilterStageConfig) -> dict[str, Any]:
        from sfi_data.pipeline import run_filter

        videos = ctx.handoff.get("videos")
        if videos is None and "scenes" in _steps(ctx.spec):
            videos = scene_videos(ctx)  # the scenes step ran before (--from filter): read its manifest
        if not ctx.inputs and not ctx.list_files and videos is None:
            raise ValueError(
                "the pipeline names no inputs: set `inputs:` (folders, globs, files) or `list_files:`"
            )
        with ctx.progress("filter") as progress:
            summary = run_filter(
                ctx.inputs,
                ctx.out_dir,
                config,
                ctx.run,
                ctx.weights_dir,
                ctx.list_files,
                progress,
                videos=videos,
            )
        return _summary_dict(summary)


class CutStep(PipelineStep):
    """`cut:` holds CutConfig fields; clips are scored with the filter's backends (its `score:`)."""

    name = "cut"

    def configure(self, ctx: PipelineContext) -> tuple[CutConfig, Any]:
        filter_config = apply_overrides(FilterStageConfig(), ctx.section("filter"), "filter.")
        cut = apply_overrides(CutConfig(), ctx.section("cut"), "cut.")
        if cut.reader is None:
            cut = dataclasses.replace(cut, reader=filter_config.score.reader)
        return cut, filter_config.score

    def preflight(self, ctx: PipelineContext, config: tuple[CutConfig, Any]) -> None:
        from sfi_data.stages.cut import CutStage

        if not ctx.run.overwrite:
            stage = CutStage(ctx.out_dir, config[0], config[1], ctx.weights_dir)
            check_settings(ctx.out_dir, stage.name, stage.settings())

    def run(self, ctx: PipelineContext, config: tuple[CutConfig, Any]) -> dict[str, Any]:
        from sfi_data.pipeline import run_cut

        with ctx.progress("cut") as progress:
            summary = run_cut(ctx.out_dir, config[0], ctx.run, config[1], ctx.weights_dir, progress)
        return _summary_dict(summary)


class CaptionStep(PipelineStep):
    """`caption:` holds CaptionConfig fields plus `scales` (list of frame counts) and `limit`."""

    name = "caption"

    def configure(self, ctx: PipelineContext) -> tuple[CaptionConfig, list[int] | None, int | None]:
        section = _with_run(ctx.section("caption"), ctx)
        scales, limit = section.pop("scales", None), section.pop("limit", None)
        if scales is not None and not (isinstance(scales, list) and all(type(s) is int for s in scales)):
            raise ValueError(f"setting caption.scales must be a list of frame counts, not {scales!r}")
        if limit is not None and type(limit) is not int:
            raise ValueError(f"setting caption.limit must be an integer, not {limit!r}")
        config = apply_overrides(CaptionConfig(), section, "caption.")
        return config, scales, limit

    def preflight(self, ctx: PipelineContext, config: tuple) -> None:
        from sfi_data.captioning import caption_stage

        caption = config[0]
        if not (ctx.run.overwrite or caption.overwrite):
            stage = caption_stage(ctx.out_dir, caption)
            check_settings(ctx.out_dir, stage.name, stage.settings())

    def run(self, ctx: PipelineContext, config: tuple) -> dict[str, Any]:
        from sfi_data.captioning import run_captions

        caption, scales, limit = config
        with ctx.progress("caption") as progress:
            summary = run_captions(ctx.out_dir, caption, progress, scales=scales, limit=limit, run=ctx.run)
        return _summary_dict(summary) | {"clips_per_s": summary.clips_per_s}

    def complete(self, summary: dict[str, Any]) -> bool:
        return summary.get("failed", 0) == 0


class CategorizeStep(PipelineStep):
    """`categorize:` holds CategorizeConfig fields (`categorize_with: [URL]` asks a server)."""

    name = "categorize"

    def configure(self, ctx: PipelineContext) -> CategorizeConfig:
        config = apply_overrides(CategorizeConfig(), _with_run(ctx.section("categorize"), ctx), "categorize.")
        return config

    def run(self, ctx: PipelineContext, config: CategorizeConfig) -> dict[str, Any]:
        from sfi_data.categorize import run_categorize

        with ctx.progress("categorize") as progress:
            return _summary_dict(run_categorize(ctx.out_dir, config, progress, run=ctx.run))

    def complete(self, summary: dict[str, Any]) -> bool:
        return summary.get("failed", 0) == 0


class SplitStep(PipelineStep):
    name = "split"

    def configure(self, ctx: PipelineContext) -> SplitConfig:
        return apply_overrides(SplitConfig(), ctx.section("split"), "split.")

    def run(self, ctx: PipelineContext, config: SplitConfig) -> dict[str, Any]:
        from sfi_data.split import run_split

        return _summary_dict(run_split(ctx.out_dir, config, run=ctx.run))


class StatsStep(PipelineStep):
    name = "stats"

    def configure(self, ctx: PipelineContext) -> StatsConfig:
        return apply_overrides(StatsConfig(), ctx.section("stats"), "stats.")

    def run(self, ctx: PipelineContext, config: StatsConfig) -> dict[str, Any]:
        from sfi_data.stats import write_card

        return {"card": str(write_card(ctx.out_dir, with_plots=config.plots, config=config))}


class ExportStep(PipelineStep):
    """`export:` holds ExportConfig fields; `dest` defaults to OUT/shards (OUT/hf for format hf)."""

    name = "export"

    def configure(self, ctx: PipelineContext) -> ExportConfig:
        config = apply_overrides(ExportConfig(), _with_run(ctx.section("export"), ctx), "export.")
        if not config.dest:
            folder = "hf" if config.format == "hf" else "shards"
            config = dataclasses.replace(config, dest=str(ctx.out_dir / folder))
        return config

    def run(self, ctx: PipelineContext, config: ExportConfig) -> dict[str, Any]:
        from sfi_data.export import run_export

        with ctx.progress("export") as progress:
            return _summary_dict(run_export(ctx.out_dir, config, progress, run=ctx.run))

    def complete(self, summary: dict[str, Any]) -> bool:
        return summary.get("failed", 0) == 0


STEPS: Registry[type[PipelineStep]] = Registry(
    "pipeline step",
    PipelineStep,
    {
        step.name: step
        for step in (
            ScenesStep,
            FilterStep,
            CutStep,
            CaptionStep,
            CategorizeStep,
            SplitStep,
            StatsStep,
            ExportStep,
        )
    },
)


@dataclass
class StepOutcome:
    name: str
    status: str  # done | incomplete
    seconds: float
    summary: dict[str, Any]


def load_pipeline(path: Path) -> dict[str, Any]:
    """Read a pipeline file and check it whole (see `check_pipeline`)."""
    spec = load_yaml(path)
    check_pipeline(spec, where=f"{path}: ")
    return spec


def check_pipeline(spec: dict[str, Any], where: str = "") -> list[tuple[PipelineStep, Any]]:
    """Every step with its checked settings, or ValueError (one line) for the first problem found."""
    try:
        unknown = set(spec) - set(GLOBAL_KEYS) - set(STEPS)
        if unknown:
            known = ", ".join([*GLOBAL_KEYS, *STEPS])
            raise ValueError(f"unknown keys {sorted(unknown)}; known: {known}")
        for key, kind in GLOBAL_KEYS.items():
            if key in spec and spec[key] is not None and not isinstance(spec[key], kind):
                raise ValueError(
                    f"`{key}` must be a {getattr(kind, '__name__', 'string or null')}, not {spec[key]!r}"
                )
        ctx = _context(spec, Path(spec.get("out") or "sfi_out"))
        return [(step, step.configure(ctx)) for step in (STEPS.get(name)() for name in _steps(spec))]
    except ValueError as error:
        raise ValueError(f"{where}{error}") from error


def _steps(spec: dict[str, Any]) -> list[str]:
    steps = spec.get("steps") or DEFAULT_STEPS
    for name in steps:
        STEPS.get(name)
    return list(steps)


def _context(
    spec: dict[str, Any], out_dir: Path, progress: ProgressFactory = _no_progress
) -> PipelineContext:
    run = apply_overrides(RunConfig(), spec.get("run"), "run.")
    return PipelineContext(spec, out_dir, run, spec.get("weights_dir"), progress)


def run_pipeline(
    spec: dict[str, Any],
    out_dir: Path | None = None,
    only: list[str] | None = None,
    start_at: str | None = None,
    overwrite: bool = False,
    progress: ProgressFactory = _no_progress,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> list[StepOutcome]:
    """Check the whole pipeline, then run its steps in order; each resumes its own finished work.

    overwrite: redo every step's work (instead of refusing settings that differ from it).
    """
    if overwrite:
        spec = spec | {"run": dict(spec.get("run") or {}) | {"overwrite": True}}
    out_dir = Path(out_dir or spec.get("out") or "sfi_out")
    checked = {step.name: (step, config) for step, config in check_pipeline(spec)}
    order = _steps(spec)
    for name in [*(only or []), *([start_at] if start_at else [])]:
        STEPS.get(name)
        if name not in order:
            raise ValueError(f"step {name!r} is not in this pipeline's steps {order}")
    if start_at:
        order = order[order.index(start_at) :]
    if only:
        order = [name for name in order if name in only]
    ctx = _context(spec, out_dir, progress)
    for name in order:
        step, config = checked[name]
        step.preflight(ctx, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name in order:
        step, config = checked[name]
        start = time.perf_counter()
        summary = step.run(ctx, config)
        status = "done" if step.complete(summary) else "incomplete"
        outcome = StepOutcome(name, status, time.perf_counter() - start, summary)
        log.info("pipeline step %s: %s", name, outcome.status)
        outcomes.append(outcome)
        if on_step:
            on_step(outcome)
    return outcomes
