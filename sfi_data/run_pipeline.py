"""`sfi-data run PIPELINE.yaml`: the whole chain (filter -> cut -> caption -> split -> stats) from one file.

Every step is resumable on its own (part files, skipped finished work); on top of that the chain keeps
DIR/pipeline_state.json and skips a step that finished with the same settings. To add a step, subclass
`PipelineStep` and add it to `STEPS` (and, if it belongs in the default chain, to `DEFAULT_STEPS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sfi_core.manifest import atomic_path
from sfi_data.config import CutConfig, FilterStageConfig, RunConfig, ScoreConfig, apply_overrides, load_yaml

log = logging.getLogger("sfi_data")

STATE_FILE = "pipeline_state.json"
DEFAULT_STEPS = ["filter", "cut", "caption", "split", "stats"]
# Top-level keys of a pipeline file that are not a step's own section.
GLOBAL_KEYS = {"name", "out", "inputs", "list_files", "demo_corpus", "steps", "run", "weights_dir"}

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
    # Input rows handed from one step to the next (e.g. scene segments for the filter).
    handoff: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        value = self.spec.get(name) or {}
        if not isinstance(value, dict):
            raise ValueError(f"pipeline section {name!r} must be a mapping, got {type(value).__name__}")
        return dict(value)


class PipelineStep:
    """One link of the chain: `run` does the work (resumably) and returns a JSON-able summary."""

    name: str = "step"

    def run(self, ctx: PipelineContext) -> dict[str, Any]:
        raise NotImplementedError

    def complete(self, summary: dict[str, Any]) -> bool:
        """Whether a finished run left nothing to redo (a step with failures to retry says False)."""
        return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k if isinstance(k, str) else ",".join(map(str, k)) if isinstance(k, tuple) else str(k): _jsonable(
                v
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _summary_dict(summary: Any) -> dict[str, Any]:
    """A step's summary as plain JSON types (Counters keyed by tuples become "a,b" keys)."""
    return _jsonable(dataclasses.asdict(summary) if dataclasses.is_dataclass(summary) else dict(summary))


def _score_config(ctx: PipelineContext) -> ScoreConfig:
    return apply_overrides(ScoreConfig(), ctx.section("filter").get("score"))


class FilterStep(PipelineStep):
    name = "filter"

    def run(self, ctx: PipelineContext) -> dict[str, Any]:
        from sfi_data.pipeline import run_filter

        inputs = [str(p) for p in ctx.spec.get("inputs") or []]
        if ctx.spec.get("demo_corpus"):
            from sfi_data.demo import build_corpus

            inputs += [str(p) for p in build_corpus(Path(ctx.spec["demo_corpus"]))]
        videos = ctx.handoff.get("videos")
        if videos is None and "scenes" in (ctx.spec.get("steps") or DEFAULT_STEPS):
            videos = scene_videos(ctx)  # the scenes step was skipped as done: read its manifest
        if not inputs and not ctx.spec.get("list_files") and videos is None:
            raise ValueError(
                "the pipeline names no inputs: set `inputs:` (folders, globs, files) or `list_files:`"
            )
        config = apply_overrides(FilterStageConfig(), ctx.section("filter"))
        with ctx.progress("filter") as progress:
            summary = run_filter(
                inputs,
                ctx.out_dir,
                config,
                ctx.run,
                ctx.weights_dir,
                list(ctx.spec.get("list_files") or []),
                progress,
                videos=videos,
            )
        return _summary_dict(summary)


def scene_videos(ctx: PipelineContext) -> list[dict[str, Any]]:
    """The filter's input rows: the ok segments of DIR/scenes.parquet."""
    from sfi_data.scenes import SCENES_MANIFEST, segments_as_videos

    return segments_as_videos(ctx.out_dir / SCENES_MANIFEST, ctx.out_dir)[0]


class ScenesStep(PipelineStep):
    """`scenes:` holds ScenesConfig fields. List "scenes" before "filter" in `steps:` and the filter
    takes the single-shot segments of the inputs instead of the whole files."""

    name = "scenes"

    def run(self, ctx: PipelineContext) -> dict[str, Any]:
        from sfi_data.config import ScenesConfig
        from sfi_data.scenes import run_scenes

        config = apply_overrides(ScenesConfig(), ctx.section("scenes"))
        inputs = [str(p) for p in ctx.spec.get("inputs") or []]
        if ctx.spec.get("demo_corpus"):
            from sfi_data.demo import build_corpus

            inputs += [str(p) for p in build_corpus(Path(ctx.spec["demo_corpus"]))]
        with ctx.progress("scenes") as progress:
            summary = run_scenes(
                inputs, ctx.out_dir, config, ctx.run, list(ctx.spec.get("list_files") or []), progress
            )
        ctx.handoff["videos"] = scene_videos(ctx)
        return _summary_dict(summary)


class CutStep(PipelineStep):
    name = "cut"

    def run(self, ctx: PipelineContext) -> dict[str, Any]:
        from sfi_data.pipeline import run_cut

        config = apply_overrides(CutConfig(), ctx.section("cut"))
        with ctx.progress("cut") as progress:
            summary = run_cut(ctx.out_dir, config, ctx.run, _score_config(ctx), ctx.weights_dir, progress)
        return _summary_dict(summary)


class CaptionStep(PipelineStep):
    """`caption:` holds CaptionConfig fields, plus `scales`, `limit`, and `fake_server: true`, which
    serves the loopback test double (sfi_data.testing.fake_vllm) for a run without a GPU: its
    captions are labelled model "fake-vllm" and describe nothing."""

    name = "caption"

    def run(self, ctx: PipelineContext) -> dict[str, Any]:
        from sfi_data.captioning import CaptionConfig, run_captions

        section = ctx.section("caption")
        fake = bool(section.pop("fake_server", False))
        scales, limit = section.pop("scales", None), section.pop("limit", None)
        config = apply_overrides(CaptionConfig(), section)
        with contextlib.ExitStack() as stack:
            if fake:
                from sfi_data.testing.fake_vllm import FAKE_MODEL, FakeVLLMServer

                server = stack.enter_context(FakeVLLMServer(max_images=max(config.frames, 16)))
                config = dataclasses.replace(config, api_bases=[server.url], model=FAKE_MODEL)
            with ctx.progress("caption") as progress:
                summary = run_captions(ctx.out_dir, config, progress, scales=scales, limit=limit)
        return _summary_dict(summary) | {"clips_per_s": summary.clips_per_s}

    def complete(self, summary: dict[str, Any]) -> bool:
        return summary.get("failed", 0) == 0


class SplitStep(PipelineStep):
    name = "split"

    def run(self, ctx: PipelineContext) -> dict[str, Any]:
        from sfi_data.split import SplitConfig, run_split

        return _summary_dict(run_split(ctx.out_dir, apply_overrides(SplitConfig(), ctx.section("split"))))


class StatsStep(PipelineStep):
    name = "stats"

    def run(self, ctx: PipelineContext) -> dict[str, Any]:
        from sfi_data.stats import write_card

        card = write_card(ctx.out_dir, with_plots=bool(ctx.section("stats").get("plots", True)))
        return {"card": str(card)}


STEPS: dict[str, type[PipelineStep]] = {
    "scenes": ScenesStep,
    "filter": FilterStep,
    "cut": CutStep,
    "caption": CaptionStep,
    "split": SplitStep,
    "stats": StatsStep,
}


def step_class(name: str) -> type[PipelineStep]:
    if name not in STEPS:
        import difflib

        close = difflib.get_close_matches(name, list(STEPS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown pipeline step {name!r}{hint} (steps: {', '.join(STEPS)})")
    return STEPS[name]


def _fingerprint(spec: dict[str, Any], step: str) -> str:
    """What a step's result depends on: the inputs and the settings of this step and those before it."""
    data = {key: spec.get(key) for key in ("inputs", "list_files", "demo_corpus", "weights_dir")}
    order = list(spec.get("steps") or DEFAULT_STEPS)
    for name in order[: order.index(step) + 1] if step in order else [step]:
        data[name] = spec.get(name)
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:16]


@dataclass
class StepOutcome:
    name: str
    status: str  # done | skipped | failed
    seconds: float
    summary: dict[str, Any]


def load_state(out_dir: Path) -> dict[str, Any]:
    path = out_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {"steps": {}}


def _save_state(out_dir: Path, state: dict[str, Any]) -> None:
    with atomic_path(out_dir / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(state, indent=2, default=str) + "\n")


def load_pipeline(path: Path) -> dict[str, Any]:
    spec = load_yaml(path)
    unknown = set(spec) - GLOBAL_KEYS - set(STEPS)
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(GLOBAL_KEYS | set(STEPS))}")
    for name in spec.get("steps") or DEFAULT_STEPS:
        step_class(name)
    return spec


def run_pipeline(
    spec: dict[str, Any],
    out_dir: Path | None = None,
    only: list[str] | None = None,
    start_at: str | None = None,
    force: bool = False,
    progress: ProgressFactory = _no_progress,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> list[StepOutcome]:
    """Run the steps of `spec` in order; a step that finished with these settings is skipped unless `force`."""
    out_dir = Path(out_dir or spec.get("out") or "sfi_out")
    out_dir.mkdir(parents=True, exist_ok=True)
    order = list(spec.get("steps") or DEFAULT_STEPS)
    for name in [*(only or []), *([start_at] if start_at else [])]:
        step_class(name)
        if name not in order:
            raise ValueError(f"step {name!r} is not in this pipeline's steps {order}")
    if start_at:
        order = order[order.index(start_at) :]
    if only:
        order = [name for name in order if name in only]
    run = apply_overrides(RunConfig(), spec.get("run"))
    ctx = PipelineContext(spec, out_dir, run, spec.get("weights_dir"), progress)
    state = load_state(out_dir)
    outcomes = []
    for name in order:
        step = step_class(name)()
        fingerprint = _fingerprint(spec, name)
        held = state["steps"].get(name, {})
        if not force and held.get("status") == "done" and held.get("fingerprint") == fingerprint:
            outcome = StepOutcome(name, "skipped", 0.0, held.get("summary", {}))
        else:
            state["steps"][name] = {"status": "running", "fingerprint": fingerprint, "started_at": _now()}
            _save_state(out_dir, state)
            start = time.perf_counter()
            try:
                summary = step.run(ctx)
            except Exception as error:
                state["steps"][name] |= {
                    "status": "failed",
                    "error": f"{type(error).__name__}: {error}",
                    "finished_at": _now(),
                }
                _save_state(out_dir, state)
                raise
            seconds = time.perf_counter() - start
            status = "done" if step.complete(summary) else "incomplete"
            state["steps"][name] |= {
                "status": status,
                "finished_at": _now(),
                "seconds": round(seconds, 3),
                "summary": summary,
            }
            _save_state(out_dir, state)
            outcome = StepOutcome(name, status, seconds, summary)
        log.info("pipeline step %s: %s", name, outcome.status)
        outcomes.append(outcome)
        if on_step:
            on_step(outcome)
    return outcomes


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
