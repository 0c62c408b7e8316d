"""`sfi-data categorize`: a content category for every captioned clip (DIR/categories.parquet).

By default the category is the keyword taxonomy's (sfi_core.categories: weight-free, instant). With
`--categorize-with URL` the caption server is asked instead: one short text-only request per caption,
its reply read as one of the taxonomy's names. Either way the stage runs through the shared driver
(part files, resume, settings recorded), and a failed request keeps a row with its reason and is
retried by the next run, as in `caption`.

Readers (split, stats, export) take a clip's category from categories.parquet when its row was made
from the clip's current caption, and from the taxonomy otherwise (`categories_for`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from sfi_core.categories import LABELS, NAMES, OTHER, TAXONOMY, TAXONOMY_VERSION, categorize
from sfi_core.config import ExecutionConfig
from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.driver import run_stage
from sfi_core.manifest import write_rows
from sfi_core.manifest_table import merge_parts
from sfi_core.schemas import CATEGORIES, empty_row
from sfi_core.stage import Stage, describe_error
from sfi_data.captioning import CAPTIONS_MANIFEST, failure_code
from sfi_data.config_dataset import CategorizeConfig
from sfi_data.vllm_client import ChatClient, RequestFailed, api_key_from_env, gather_bounded

log = logging.getLogger(__name__)

CATEGORIES_MANIFEST = "categories.parquet"
STAGE_NAME = "categorize"
PROMPT_VERSION = "categorize-v1"


def caption_sha1(caption: str | None) -> str:
    return hashlib.sha1((caption or "").encode("utf-8")).hexdigest()


def llm_prompt() -> str:
    """The system prompt of `--categorize-with`: the taxonomy's names and labels, one answer."""
    choices = "\n".join(f"- {c.name}: {c.label}" for c in TAXONOMY) + f"\n- {OTHER}: none of these"
    return (
        "You sort video clips into content categories from their description. Answer with exactly one "
        f"category name from this list and nothing else:\n{choices}\n"
        "Pick the category of the main subject; animation and screen recordings win over content."
    )


def parse_category(reply: str) -> str | None:
    """The category a reply names (its name or label, in any case and punctuation), or None."""
    text = reply.strip().lower()
    plain = re.sub(r"[^a-z_& ]+", " ", text).strip()
    for name in NAMES:
        if plain in (name, LABELS[name].lower()) or plain.replace(" ", "_") == name:
            return name
    found = [(text.find(name), name) for name in NAMES if re.search(rf"\b{name}\b", text)]
    return min(found)[1] if len(found) == 1 else None


@dataclass
class CategorizeSummary:
    total: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    source: str = TAXONOMY_VERSION
    counts: dict[str, int] = field(default_factory=dict)  # category -> clips (all ok rows)
    reasons: dict[str, int] = field(default_factory=dict)


class CategorizeStage(Stage):
    """Captioned clip rows in, one CATEGORIES row per clip out (never none, never two)."""

    name = STAGE_NAME
    key = "clip_id"

    def __init__(self, config: CategorizeConfig, api_key: str | None = None) -> None:
        if config.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {config.concurrency}")
        self.config = config
        self.api_key = api_key
        self.shard_size = config.batch_size
        self._batches = 0

    @property
    def source(self) -> str:
        return f"llm:{self.config.model}" if self.config.categorize_with else TAXONOMY_VERSION

    def settings(self) -> dict:
        """What shapes a category: the rule (taxonomy version) or the model and its prompt."""
        if not self.config.categorize_with:
            return {"source": TAXONOMY_VERSION}
        return {"source": self.source, "prompt_version": PROMPT_VERSION, "choices": list(NAMES)}

    def _base_row(self, row: dict) -> dict:
        return empty_row(CATEGORIES) | {
            "clip_id": row["clip_id"],
            "video_id": row.get("video_id"),
            "num_frames": row.get("num_frames"),
            "category_source": self.source,
            "caption_sha1": caption_sha1(row.get("caption")),
        }

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        return [
            self._base_row(row)
            | {"status": STATUS_ERROR, "reason": describe_error(error), "reason_code": "unexpected_error"}
        ]

    def process_row(self, row: dict) -> list[dict]:
        return [self._base_row(row) | {"status": STATUS_OK, "category": categorize(row.get("caption"))}]

    async def _ask(self, client: ChatClient, row: dict) -> dict:
        out = self._base_row(row)
        body = {
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": llm_prompt()},
                {"role": "user", "content": row.get("caption") or ""},
            ],
            "max_tokens": 8,
            "temperature": 0.0,
        }
        try:
            reply = await client.complete(body)
        except RequestFailed as error:
            code = failure_code(error.reason)
            return out | {
                "status": STATUS_ERROR,
                "reason": error.reason,
                "reason_code": code,
                "attempts": error.attempts,
                "api_base": error.api_base,
            }
        found = parse_category(reply.text)
        answered = {"api_base": reply.api_base, "attempts": reply.attempts, "reply": reply.text[:200]}
        if found is None:
            reason = f"the reply {reply.text[:80]!r} names no category of {', '.join(NAMES)}"
            return out | answered | {"status": STATUS_ERROR, "reason": reason, "reason_code": "bad_reply"}
        return out | answered | {"status": STATUS_OK, "category": found}

    async def ask_batch(self, rows: list[dict]) -> list[dict]:
        config = self.config
        first = self._batches * len(rows)
        async with ChatClient.configured(config.categorize_with, self.api_key, config, first) as client:
            results = await gather_bounded(rows, lambda row: self._ask(client, row), config.concurrency)
        self._batches += 1
        return [
            self.error_rows(row, result)[0] if isinstance(result, BaseException) else result
            for row, result in zip(rows, results, strict=True)
        ]

    def run(self, rows: Iterable[dict]) -> Iterator[dict]:
        if not self.config.categorize_with:
            yield from super().run(rows)
            return
        batch = list(rows)
        if batch:
            yield from asyncio.run(self.ask_batch(batch))


def captioned_clips(out_dir: Path) -> list[dict]:
    """The clips with a successful caption (DIR/captions.parquet), in clip_id order."""
    path = out_dir / CAPTIONS_MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `sfi-data caption --out {out_dir}` first")
    columns = ["clip_id", "video_id", "num_frames", "status", "caption"]
    rows = pq.read_table(path, columns=columns).to_pylist()
    return sorted((r for r in rows if r["status"] == STATUS_OK), key=lambda r: r["clip_id"])


def run_categorize(
    out_dir: Path,
    config: CategorizeConfig | None = None,
    progress=None,
    api_key: str | None = None,
    run: ExecutionConfig | None = None,
) -> CategorizeSummary:
    """Categorize every captioned clip into DIR/categories.parquet (resumable; failures retried)."""
    config = config or CategorizeConfig()
    out_dir = Path(out_dir)
    clips = captioned_clips(out_dir)
    stage = CategorizeStage(config, api_key if api_key is not None else api_key_from_env())
    run = (run or ExecutionConfig()).for_step(config.batch_size, config.overwrite)
    redo = None if config.overwrite else stale_captions(out_dir, clips)
    stage_summary = run_stage(stage, clips, out_dir, CATEGORIES, run, progress, redo=redo)
    merged = merge_parts(out_dir / "work" / STAGE_NAME, CATEGORIES, "clip_id", [r["clip_id"] for r in clips])
    write_rows(merged, CATEGORIES, out_dir / CATEGORIES_MANIFEST)
    summary = CategorizeSummary(
        total=len(clips), skipped=stage_summary.skipped, seconds=stage_summary.seconds, source=stage.source
    )
    for row in merged:
        if row["status"] == STATUS_OK:
            summary.ok += 1
            summary.counts[row["category"]] = summary.counts.get(row["category"], 0) + 1
        else:
            summary.failed += 1
            code = row.get("reason_code") or "unknown"
            summary.reasons[code] = summary.reasons.get(code, 0) + 1
    return summary


def stale_captions(out_dir: Path, clips: list[dict]) -> set[str]:
    """Clips captioned anew since their category row: the driver counts them finished, so they are
    its `redo` keys (their new rows supersede the old by the part's generation)."""
    held = merge_parts(out_dir / "work" / STAGE_NAME, CATEGORIES, "clip_id", [r["clip_id"] for r in clips])
    sha = {r["clip_id"]: r["caption_sha1"] for r in held if r["status"] == STATUS_OK}
    stale = {
        r["clip_id"] for r in clips if r["clip_id"] in sha and sha[r["clip_id"]] != caption_sha1(r["caption"])
    }
    if stale:
        log.info("categorize: %d clips captioned again since, categorized again", len(stale))
    return stale


def read_categories(out_dir: Path) -> dict[str, dict]:
    """clip_id -> its DIR/categories.parquet row (ok rows only); {} when there is none."""
    path = Path(out_dir) / CATEGORIES_MANIFEST
    if not path.is_file():
        return {}
    columns = ["clip_id", "status", "category", "category_source", "caption_sha1"]
    return {
        r["clip_id"]: r for r in pq.read_table(path, columns=columns).to_pylist() if r["status"] == STATUS_OK
    }


def categories_for(out_dir: Path, rows: list[dict]) -> dict[str, tuple[str, str]]:
    """clip_id -> (category, source) for clip rows with a `caption`: categories.parquet's answer when it
    was made from the same caption, the taxonomy's otherwise (a clip without caption: `other`)."""
    held = read_categories(out_dir)
    out: dict[str, tuple[str, str]] = {}
    stale = 0
    for row in rows:
        found = held.get(row["clip_id"])
        if found is not None and found["caption_sha1"] == caption_sha1(row.get("caption")):
            out[row["clip_id"]] = (found["category"], found["category_source"])
        else:
            stale += found is not None
            out[row["clip_id"]] = (categorize(row.get("caption")), TAXONOMY_VERSION)
    if stale:
        log.warning(
            "%d clips were captioned again after `sfi-data categorize`: the taxonomy categorizes them "
            "(rerun `sfi-data categorize --out %s` to ask the server again)",
            stale,
            out_dir,
        )
    return out
