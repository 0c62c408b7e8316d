"""Dense captions for every clip through a vLLM server (paper section 3.3.1: Qwen2.5-VL-32B).

Each clip goes out as evenly spaced frames, first and last included, so the model sees the transition.
Results are written incrementally as part files under DIR/work/caption/ and merged into
DIR/captions.parquet (one row per clip_id: a caption, or the reason it failed). A rerun skips captioned
clips and retries failed ones; a killed run loses at most the replies not yet flushed, which the next
run asks for again.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sfi_core.manifest import write_rows
from sfi_core.schemas import CAPTIONS, STATUS_ERROR, STATUS_OK, empty_row
from sfi_core.video import VideoError
from sfi_data.vllm_client import ChatClient, RequestFailed, RetryPolicy, api_key_from_env

log = logging.getLogger(__name__)

CAPTIONS_MANIFEST = "captions.parquet"
PARTS_DIR = Path("work") / "caption"
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-32B-Instruct"
PROMPTS_DIR = Path(__file__).resolve().parent.parent / "pipelines" / "prompts"
DEFAULT_PROMPT = PROMPTS_DIR / "caption_v1.yaml"

Progress = Callable[[int, int], None]


@dataclass
class CaptionConfig:
    api_bases: list[str] = field(default_factory=lambda: ["http://localhost:8000/v1"])
    model: str = DEFAULT_MODEL
    prompt: str = str(DEFAULT_PROMPT)
    frames: int = 8  # frames sent per clip, first and last included
    max_side: int = 448  # longest image side in pixels (Qwen2.5-VL: 28 px per token side)
    jpeg_quality: int = 90
    concurrency: int = 16  # requests in flight
    timeout_s: float = 180.0  # per request
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    max_tokens: int = 512
    temperature: float = 0.2
    flush_every: int = 64  # write a part file after this many results...
    flush_interval_s: float = 15.0  # ...or this many seconds, whichever comes first
    overwrite: bool = False  # caption everything again


@dataclass
class CaptionPrompt:
    version: str
    system: str
    user: str

    def render(self, frames_sent: int, num_frames: int, duration_s: float) -> str:
        return self.user.format(frames_sent=frames_sent, num_frames=num_frames, duration_s=duration_s)


@dataclass
class CaptionSummary:
    total: int = 0
    skipped: int = 0  # captioned in an earlier run
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def clips_per_s(self) -> float:
        return (self.ok + self.failed) / self.seconds if self.seconds > 0 else float("nan")


def load_prompt(path: str | Path) -> CaptionPrompt:
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"caption prompt {path} not found; the default is {DEFAULT_PROMPT}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in ("version", "system", "user") if not data.get(key)]
    if missing:
        raise ValueError(f"{path}: the prompt file needs {missing} (see {DEFAULT_PROMPT})")
    return CaptionPrompt(version=str(data["version"]), system=str(data["system"]), user=str(data["user"]))


def sample_indices(num_frames: int, count: int) -> list[int]:
    """`count` evenly spaced frame indices of a clip, always its first and its last frame."""
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames}")
    if count < 2:
        raise ValueError(f"send at least 2 frames (first and last), got {count}")
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, min(count, num_frames))})


def jpeg_data_urls(frames: np.ndarray, max_side: int, quality: int = 90) -> list[str]:
    """uint8 RGB frames (T, H, W, 3) to base64 JPEG data URLs, longest side at most `max_side`."""
    import cv2

    height, width = frames.shape[1:3]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    urls = []
    for frame in frames:
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else frame
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise ValueError("JPEG encoding failed")
        urls.append("data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii"))
    return urls


def build_request(
    images: list[str], prompt: CaptionPrompt, config: CaptionConfig, num_frames: int, duration_s: float
) -> dict:
    """A chat-completions body: the frames as image_url parts in order, each labelled, then the instruction."""
    content: list[dict] = []
    for number, url in enumerate(images, start=1):
        label = "first frame" if number == 1 else "last frame" if number == len(images) else f"frame {number}"
        content.append({"type": "text", "text": f"Frame {number} ({label}):"})
        content.append({"type": "image_url", "image_url": {"url": url}})
    content.append({"type": "text", "text": prompt.render(len(images), num_frames, duration_s)})
    return {
        "model": config.model,
        "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}],
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
    }


def clip_request(root: Path, row: dict, prompt: CaptionPrompt, config: CaptionConfig) -> dict:
    """Decode the sampled frames of one clip and build its request (blocking: runs in a thread)."""
    from sfi_core.video import read_frames

    num_frames = int(row["num_frames"])
    frames = read_frames(root / row["clip_path"], sample_indices(num_frames, config.frames))
    duration_s = num_frames / float(row["fps"]) if row.get("fps") else 0.0
    return build_request(
        jpeg_data_urls(frames, config.max_side, config.jpeg_quality), prompt, config, num_frames, duration_s
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _rank(row: dict) -> tuple[bool, str]:
    # A caption beats a failure; among equals the newest wins.
    return row["status"] == STATUS_OK, row.get("created_at") or ""


def read_existing(out_dir: Path) -> dict[str, dict]:
    """Every caption row on disk (the manifest and unmerged parts), one per clip_id."""
    best: dict[str, dict] = {}
    sources = [out_dir / CAPTIONS_MANIFEST] if (out_dir / CAPTIONS_MANIFEST).exists() else []
    sources += sorted((out_dir / PARTS_DIR).glob("part-*.parquet"))
    for source in sources:
        for row in pq.read_table(source, schema=CAPTIONS).to_pylist():
            held = best.get(row["clip_id"])
            if held is None or _rank(row) >= _rank(held):
                best[row["clip_id"]] = row
    return best


def merge_captions(out_dir: Path, order: list[str] | None = None) -> list[dict]:
    """Fold the part files into DIR/captions.parquet (atomically), then remove the parts."""
    parts = sorted((out_dir / PARTS_DIR).glob("part-*.parquet"))
    rows = read_existing(out_dir)
    if order is not None:
        ranked = {clip_id: i for i, clip_id in enumerate(order)}
        merged = sorted(rows.values(), key=lambda r: (ranked.get(r["clip_id"], len(ranked)), r["clip_id"]))
    else:
        merged = sorted(rows.values(), key=lambda r: r["clip_id"])
    write_rows(merged, CAPTIONS, out_dir / CAPTIONS_MANIFEST)
    for part in parts:
        part.unlink()
    return merged


class _PartWriter:
    """Buffers result rows and writes them as atomic part files, so a crash loses at most one buffer."""

    def __init__(self, parts_dir: Path, flush_every: int, flush_interval_s: float) -> None:
        self.parts_dir = parts_dir
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self.buffer: list[dict] = []
        self.last_flush = time.monotonic()

    def add(self, row: dict) -> None:
        self.buffer.append(row)
        if (
            len(self.buffer) >= self.flush_every
            or time.monotonic() - self.last_flush >= self.flush_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            write_rows(self.buffer, CAPTIONS, self.parts_dir / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet")
            self.buffer = []
        self.last_flush = time.monotonic()


def _result_row(row: dict, config: CaptionConfig, prompt: CaptionPrompt, frames_sent: int) -> dict:
    return empty_row(CAPTIONS) | {
        "clip_id": row["clip_id"],
        "video_id": row.get("video_id"),
        "num_frames": row.get("num_frames"),
        "model": config.model,
        "prompt_version": prompt.version,
        "frames_sent": frames_sent,
        "max_side": config.max_side,
        "created_at": _now(),
    }


class Captioner:
    """Captions clip rows with bounded concurrency; every clip yields exactly one result row."""

    def __init__(self, root: Path, config: CaptionConfig, api_key: str | None = None) -> None:
        if config.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {config.concurrency}")
        self.root = root
        self.config = config
        self.prompt = load_prompt(config.prompt)
        self.api_key = api_key if api_key is not None else api_key_from_env()

    async def _caption_one(self, client: ChatClient, pool: concurrent.futures.Executor, row: dict) -> dict:
        frames_sent = len(sample_indices(int(row["num_frames"]), self.config.frames))
        out = _result_row(row, self.config, self.prompt, frames_sent)
        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(pool, clip_request, self.root, row, self.prompt, self.config)
        except (VideoError, OSError, ValueError) as error:
            return out | {"status": STATUS_ERROR, "reason": f"could not read frames: {error}", "attempts": 0}
        try:
            reply = await client.complete(body)
        except RequestFailed as error:
            return out | {
                "status": STATUS_ERROR,
                "reason": error.reason,
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

    async def run(self, rows: list[dict], on_result: Callable[[dict], None]) -> None:
        """Caption `rows`, calling `on_result` (in the event loop's thread) once per clip."""
        config = self.config
        retry = RetryPolicy(config.max_attempts, config.backoff_base_s, config.backoff_max_s)
        queue: asyncio.Queue[dict] = asyncio.Queue()
        for row in rows:
            queue.put_nowait(row)
        threads = max(1, min(config.concurrency, 8))
        with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="caption-frames") as pool:
            async with ChatClient(
                config.api_bases,
                self.api_key,
                config.timeout_s,
                max_connections=config.concurrency,
                retry=retry,
            ) as client:

                async def worker() -> None:
                    while not queue.empty():
                        row = queue.get_nowait()
                        on_result(await self._caption_one(client, pool, row))

                await asyncio.gather(*(worker() for _ in range(min(config.concurrency, max(len(rows), 1)))))


def clips_to_caption(out_dir: Path, scales: list[int] | None = None, limit: int | None = None) -> list[dict]:
    manifest = out_dir / "clips.parquet"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} not found: run `sfi-data cut --out {out_dir}` first")
    rows = [row for row in pq.read_table(manifest).to_pylist() if row["status"] == STATUS_OK]
    if scales:
        rows = [row for row in rows if int(row["num_frames"]) in set(scales)]
    return rows[:limit] if limit is not None else rows


def run_captions(
    out_dir: Path,
    config: CaptionConfig | None = None,
    progress: Progress | None = None,
    scales: list[int] | None = None,
    limit: int | None = None,
    api_key: str | None = None,
) -> CaptionSummary:
    """Caption every ok clip of DIR/clips.parquet that has no caption yet; write DIR/captions.parquet."""
    config = config or CaptionConfig()
    out_dir = Path(out_dir)
    clips = clips_to_caption(out_dir, scales, limit)
    captioner = Captioner(out_dir, config, api_key)
    if config.overwrite:
        for part in (out_dir / PARTS_DIR).glob("part-*.parquet"):
            part.unlink()
        (out_dir / CAPTIONS_MANIFEST).unlink(missing_ok=True)
    existing = read_existing(out_dir)
    done = {clip_id for clip_id, row in existing.items() if row["status"] == STATUS_OK}
    todo = [row for row in clips if row["clip_id"] not in done]
    summary = CaptionSummary(total=len(clips), skipped=len(clips) - len(todo))
    writer = _PartWriter(out_dir / PARTS_DIR, config.flush_every, config.flush_interval_s)
    finished = summary.skipped
    if progress:
        progress(finished, len(clips))

    def on_result(row: dict) -> None:
        nonlocal finished
        writer.add(row)
        finished += 1
        if row["status"] == STATUS_OK:
            summary.ok += 1
            summary.prompt_tokens += row["prompt_tokens"] or 0
            summary.completion_tokens += row["completion_tokens"] or 0
        else:
            summary.failed += 1
            summary.reasons[_reason_kind(row["reason"])] += 1
        if progress:
            progress(finished, len(clips))

    start = time.perf_counter()
    try:
        if todo:
            asyncio.run(captioner.run(todo, on_result))
    finally:
        writer.flush()  # what finished before an interrupt is kept
        summary.seconds = time.perf_counter() - start
    merge_captions(out_dir, [row["clip_id"] for row in clips])
    log.info(
        "caption: %d clips, %d done earlier, %d ok, %d failed in %.1f s",
        summary.total,
        summary.skipped,
        summary.ok,
        summary.failed,
        summary.seconds,
    )
    return summary


def _reason_kind(reason: str | None) -> str:
    """Group failure reasons that differ only in addresses and numbers."""
    import re

    text = re.sub(r"https?://\S+", "<server>", reason or "")
    text = re.sub(r"\d+(\.\d+)?", "#", text)
    return text[:120]
