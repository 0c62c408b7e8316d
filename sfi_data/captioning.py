"""Dense captions for every clip through a vLLM server (paper section 3.3.1: Qwen2.5-VL-32B), as a Stage.

Captioning runs through the same driver as filter and cut (sfi_core.driver.run_stage): the clips are
cut into batches, and inside one batch the requests go out concurrently, the way datatrove's
InferenceRunner does it (a batch of rows -> concurrent requests -> rows). Each finished batch is one
atomic part file under DIR/work/caption/, and DIR/captions.parquet is rebuilt from the parts (one row
per clip_id: a caption, or the reason it failed). A rerun keeps the captions and retries the failures;
a killed run loses at most the batches in flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from sfi_core.config import ExecutionConfig
from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.driver import run_stage
from sfi_core.manifest import read_rows, write_rows
from sfi_core.manifest_table import finished_keys, merge_parts
from sfi_core.schemas import CAPTIONS, empty_row
from sfi_core.stage import Stage, describe_error
from sfi_core.video import VideoError
from sfi_data.caption_request import (  # noqa: F401 - re-exported
    CaptionPrompt,
    clip_request,
    load_prompt,
    sample_indices,
)
from sfi_data.config_dataset import (  # noqa: F401 - re-exported
    DEFAULT_MODEL,
    DEFAULT_PROMPT,
    CaptionConfig,
    check_choice,
    resolve_reader,
)
from sfi_data.vllm_client import ChatClient, RequestFailed, api_key_from_env, gather_bounded

log = logging.getLogger(__name__)

CAPTIONS_MANIFEST = "captions.parquet"
STAGE_NAME = "caption"
PARTS_DIR = Path("work") / STAGE_NAME

Progress = Callable[[int, int], None]


@dataclass
class CaptionSummary:
    total: int = 0
    skipped: int = 0  # captioned in an earlier run
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasons: Counter = field(default_factory=Counter)  # reason_code -> failed clips
    examples: dict[str, str] = field(default_factory=dict)  # reason_code -> the first failed clip's reason

    @property
    def clips_per_s(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds > 0 else float("nan")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def failure_code(reason: str) -> str:
    """A stable code for a failed request, for grouping (the reason keeps the details)."""
    if reason.startswith("could not read frames"):
        return "decode_failed"
    status = re.search(r"HTTP (\d{3})", reason)
    if status:
        return f"http_{status.group(1)}"
    for needle, code in (("timed out", "timeout"), ("connection failed", "connection_failed")):
        if needle in reason:
            return code
    if "malformed reply" in reason or "empty reply" in reason:
        return "bad_reply"
    return "unexpected_error"


class CaptionStage(Stage):
    """Captions one batch of clip rows with bounded concurrency; every clip yields exactly one row."""

    name = STAGE_NAME
    key = "clip_id"
    num_cpus = 1.0

    def __init__(self, root: Path, config: CaptionConfig, api_key: str | None = None) -> None:
        if config.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {config.concurrency}")
        if config.frames < 2:
            raise ValueError(f"send at least 2 frames per clip (first and last), got {config.frames}")
        self.root = Path(root)
        self.config = config
        self.shard_size = config.batch_size
        self.prompt = load_prompt(config.prompt)  # fails on the driver, before any worker starts
        self.api_key = api_key
        self._batches = 0  # batches captioned by this worker: where round-robin starts next

    def settings(self) -> dict:
        """What shapes a caption; servers, concurrency, timeouts and retries only change speed."""
        config = self.config
        prompt_text = "\n".join((self.prompt.version, self.prompt.system, self.prompt.user))
        return {
            "model": config.model,
            "prompt_version": self.prompt.version,
            "prompt_sha1": hashlib.sha1(prompt_text.encode("utf-8")).hexdigest()[:16],
            "frames": config.frames,
            "max_side": config.max_side,
            "jpeg_quality": config.jpeg_quality,
            "max_tokens": config.max_tokens,
            "temperature": config.temperature,
            "reader": config.reader,
        }

    def _base_row(self, row: dict) -> dict:
        try:
            frames_sent = len(sample_indices(int(row["num_frames"]), self.config.frames))
        except (TypeError, ValueError):
            frames_sent = 0
        return empty_row(CAPTIONS) | {
            "clip_id": row["clip_id"],
            "video_id": row.get("video_id"),
            "num_frames": row.get("num_frames"),
            "model": self.config.model,
            "prompt_version": self.prompt.version,
            "frames_sent": frames_sent,
            "max_side": self.config.max_side,
            "created_at": _now(),
        }

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        reason = describe_error(error)
        return [
            self._base_row(row)
            | {"status": STATUS_ERROR, "reason": reason, "reason_code": "unexpected_error"}
        ]

    async def _caption_one(self, client: ChatClient, pool: concurrent.futures.Executor, row: dict) -> dict:
        out = self._base_row(row)
        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(pool, clip_request, self.root, row, self.prompt, self.config)
        except (VideoError, OSError, ValueError) as error:
            reason = f"could not read frames: {error}"
            return out | {
                "status": STATUS_ERROR,
                "reason": reason,
                "reason_code": "decode_failed",
                "attempts": 0,
            }
        try:
            reply = await client.complete(body)
        except RequestFailed as error:
            return out | {
                "status": STATUS_ERROR,
                "reason": error.reason,
                "reason_code": failure_code(error.reason),
                "attempts": error.attempts,
                "api_base": error.api_base,
                "latency_s": error.latency_s,
            }
        return out | {
            "status": STATUS_OK,
            "caption": reply.text,
            "api_base": reply.api_base,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.total_tokens,
            "latency_s": reply.latency_s,
            "attempts": reply.attempts,
            "finish_reason": reply.finish_reason,
        }

    async def caption_batch(self, rows: list[dict]) -> list[dict]:
        """One result row per input row, in input order; at most `concurrency` requests in flight."""
        config = self.config
        # Frame decoding and JPEG encoding block: a few threads keep the event loop free for the replies.
        threads = max(1, min(config.concurrency, 8))
        with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="caption-frames") as pool:
            first = self._batches * len(rows)
            async with ChatClient.configured(config.api_bases, self.api_key, config, first) as client:
                results = await gather_bounded(
                    rows, lambda row: self._caption_one(client, pool, row), config.concurrency
                )
        self._batches += 1
        return [
            self.error_rows(row, result)[0] if isinstance(result, BaseException) else result
            for row, result in zip(rows, results, strict=True)
        ]

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        batch = list(rows)
        if batch:
            yield from asyncio.run(self.caption_batch(batch))


def clips_to_caption(out_dir: Path, scales: list[int] | None = None, limit: int | None = None) -> list[dict]:
    manifest = out_dir / "clips.parquet"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} not found: run `sfi-data cut --out {out_dir}` first")
    if "clip_id" not in pq.read_schema(manifest).names:
        raise ValueError(f"{manifest} is not a clips manifest (no clip_id column): run `sfi-data cut` first")
    rows = [row for row in read_rows(manifest) if row["status"] == STATUS_OK]
    if scales:
        rows = [row for row in rows if int(row["num_frames"]) in set(scales)]
    return rows[:limit] if limit is not None else rows


def merge_captions(out_dir: Path, order: list[str]) -> list[dict]:
    """Rebuild DIR/captions.parquet (atomically) from the part files: the newest row per clip."""
    merged = merge_parts(out_dir / PARTS_DIR, CAPTIONS, "clip_id", order)
    write_rows(merged, CAPTIONS, out_dir / CAPTIONS_MANIFEST)
    return merged


def adopt_manifest(out_dir: Path, stage: CaptionStage) -> int:
    """Keep the captions of a dataset captioned before captioning was a Stage (a captions.parquet and
    no part files): the rows made with this model, prompt version and frame size become one part file,
    so a rerun asks the server only for the rest. Returns how many rows were adopted."""
    manifest, parts_dir = out_dir / CAPTIONS_MANIFEST, out_dir / PARTS_DIR
    if not manifest.is_file() or any(parts_dir.glob("part-*.parquet")):
        return 0
    same = {
        "model": stage.config.model,
        "prompt_version": stage.prompt.version,
        "max_side": stage.config.max_side,
    }
    names = set(CAPTIONS.names)
    rows = [
        empty_row(CAPTIONS) | {k: v for k, v in row.items() if k in names and k != "schema_version"}
        for row in read_rows(manifest)
        if all(row.get(key) == value for key, value in same.items())
    ]
    for row in rows:
        if row["status"] != STATUS_OK and not row.get("reason_code"):
            row["reason_code"] = failure_code(row.get("reason") or "")
    if rows:
        write_rows(rows, CAPTIONS, parts_dir / "part-adopted-manifest.parquet")
        log.info("caption: adopted %d rows of %s made before captioning was a Stage", len(rows), manifest)
    return len(rows)


def caption_stage(out_dir: Path, config: CaptionConfig, api_key: str | None = None) -> CaptionStage:
    """The stage `run_captions` runs, its reader resolved (also for a pipeline's check of the settings
    before any step runs: `caption_stage(DIR, config).settings()`)."""
    config = dataclasses.replace(config, reader=resolve_reader(out_dir, config.reader))
    return CaptionStage(out_dir, config, api_key if api_key is not None else api_key_from_env())


def run_captions(
    out_dir: Path,
    config: CaptionConfig | None = None,
    progress: Progress | None = None,
    scales: list[int] | None = None,
    limit: int | None = None,
    api_key: str | None = None,
    run: ExecutionConfig | None = None,
) -> CaptionSummary:
    """Caption every ok clip of DIR/clips.parquet that has no caption yet; write DIR/captions.parquet.

    `run`: the executor and its resources (the command's --executor, --address, --num-cpus); a batch
    of `config.batch_size` clips is the unit of work."""
    config = config or CaptionConfig()
    out_dir = Path(out_dir)
    clips = clips_to_caption(out_dir, scales, limit)
    stage = caption_stage(out_dir, config, api_key)
    config = stage.config
    if not config.overwrite:
        adopt_manifest(out_dir, stage)
    done_before = set() if config.overwrite else finished_keys(out_dir / PARTS_DIR, "clip_id")
    stage_summary = run_stage(
        stage,
        clips,
        out_dir,
        CAPTIONS,
        (run or ExecutionConfig()).for_step(config.batch_size, config.overwrite),
        progress,
    )
    merged = merge_captions(out_dir, [row["clip_id"] for row in clips_to_caption(out_dir)])
    summary = CaptionSummary(total=len(clips), skipped=stage_summary.skipped, seconds=stage_summary.seconds)
    wanted = {row["clip_id"] for row in clips}
    for row in merged:
        if row["clip_id"] not in wanted:
            continue
        if row["status"] != STATUS_OK:
            summary.failed += 1
            code = row.get("reason_code") or failure_code(row.get("reason") or "")
            summary.reasons[code] += 1
            summary.examples.setdefault(code, row.get("reason") or "")
        elif row["clip_id"] not in done_before:
            summary.ok += 1
            summary.prompt_tokens += row["prompt_tokens"] or 0
            summary.completion_tokens += row["completion_tokens"] or 0
    log.info(
        "caption: %d clips, %d done earlier, %d ok, %d failed in %.1f s",
        summary.total,
        summary.skipped,
        summary.ok,
        summary.failed,
        summary.seconds,
    )
    return summary
