"""`sfi-data export`: the split as WebDataset tar shards (sfi_core.shards), or as a 🤗 datasets folder.

The export is planned whole before any byte is written: the samples of a split in a stable order (by
a hash of the clip id, so neighbours in a shard come from different videos), cut into shards by
`--shard-size` samples and `--max-shard-bytes`. Each shard is one unit of work of the shared driver
(sfi_core.driver.run_stage: executors, a completion ledger, recorded settings): a worker streams the
clip files into a temporary tar (never a shard in memory), hashing it as it goes, and renames it into
place. A rerun skips the shards the ledger lists as written (and still on disk, at their size); a
killed run leaves at most temporaries, removed by the next. Tar headers carry no time, owner or
mode of ours, so two exports of one dataset are byte-identical. The plan's digest is a recorded
setting: a dataset that changed since (a new split, new captions) is refused instead of mixed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from sfi_core.config import ExecutionConfig
from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.driver import remove_stale_temporaries, run_stage
from sfi_core.manifest import atomic_path
from sfi_core.manifest_table import merge_parts
from sfi_core.schemas import EXPORT_SHARDS, SCHEMA_VERSION, empty_row
from sfi_core.shards import FIELDS, FOLDER_PATHS, SPLITS, index_file_name, sample_key, shard_file_name
from sfi_core.stage import Stage, describe_error
from sfi_data.config_dataset import ExportConfig, check_choice

log = logging.getLogger(__name__)

STAGE_NAME = "export"
LEDGER_DIR = ".sfi-export"  # the driver's parts and settings, inside DEST (hidden: not a data file)
FORMATS = ("webdataset", "hf")
HF_DATA_DIR = "data"
COPY_BUFFER = 1 << 20
BLOCK = tarfile.BLOCKSIZE
NUL = b"\0"


@dataclass
class ExportSummary:
    dest: Path
    format: str
    shards: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0
    samples: int = 0
    bytes: int = 0
    seconds: float = 0.0
    indexes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def _member_bytes(name: str, size: int) -> int:
    """Bytes a member takes in a PAX tar: its header block(s) and its data padded to 512."""
    short = len(name) <= 100 and name.isascii()  # one ustar block, no extended header
    header = BLOCK if short else len(_header(name, size))
    return header + BLOCK * math.ceil(size / BLOCK)


def tar_bytes(members: int) -> int:
    """A tar's size from its members' bytes: two zero blocks end it, zeros fill its last 10240-byte record."""
    return math.ceil((members + 2 * BLOCK) / tarfile.RECORDSIZE) * tarfile.RECORDSIZE


def _clean(value):
    """JSON-safe: NaN/inf floats become null (JSON has no NaN; the manifests' nulls stay null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sample_json(row: dict) -> bytes:
    """The `json` member: the manifest row without folder paths, keys sorted, compact, UTF-8."""
    clean = {k: _clean(v) for k, v in row.items() if k not in FOLDER_PATHS and not k.startswith("_")}
    return json.dumps(clean, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _split_rows(root: Path, split: str) -> list[dict]:
    from sfi_data.categorize import categories_for

    path = root / f"{split}.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `sfi-data split --out {root}` first")
    rows = [r for r in pq.read_table(path).to_pylist() if (r.get("status") or STATUS_OK) == STATUS_OK]
    if rows and rows[0].get("category") is None:  # a split made before categories: the taxonomy's
        found = categories_for(root, rows)
        rows = [
            r | dict(zip(("category", "category_source"), found[r["clip_id"]], strict=True)) for r in rows
        ]
    return rows


def _file_size(path: str | None) -> int:
    """Bytes of a clip file, -1 when it is absent (its shard then fails with the reason)."""
    try:
        return os.stat(path).st_size if path else -1
    except OSError:
        return -1


def _caption_provenance(root: Path) -> dict[str, tuple[str, str]]:
    path = root / "captions.parquet"
    if not path.is_file():
        return {}
    table = pq.read_table(path, columns=["clip_id", "status", "model", "prompt_version"]).to_pylist()
    return {r["clip_id"]: (r["model"], r["prompt_version"]) for r in table if r["status"] == STATUS_OK}


def plan_export(root: Path, config: ExportConfig, licences: dict[str, str] | None = None) -> list[dict]:
    """One row per shard to write: its name, split and samples (clip files + the `json` row)."""
    root = Path(root)
    if config.shard_size is not None and config.shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {config.shard_size}")
    if config.max_shard_bytes is not None and config.max_shard_bytes < BLOCK:
        raise ValueError(f"max_shard_bytes must be >= {BLOCK}, got {config.max_shard_bytes}")
    splits = SPLITS if config.split == "all" else (config.split,)
    provenance = _caption_provenance(root)
    prefix = f"{HF_DATA_DIR}/" if config.format == "hf" else ""
    shards: list[dict] = []
    for split in splits:
        rows = sorted(_split_rows(root, split), key=lambda r: hashlib.sha1(r["clip_id"].encode()).hexdigest())
        keys = [sample_key(r["clip_id"]) for r in rows]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{split}: two clip ids map to one WebDataset key; rename the source files")
        current: list[dict] = []
        index = size = 0  # the split's next shard number; bytes of the shard being planned
        for row, key in zip(rows, keys, strict=True):
            model, prompt = provenance.get(row["clip_id"], (None, None))
            data = row | {"key": key, "caption_model": model, "caption_prompt_version": prompt}
            data["license"] = (licences or {}).get(row["video_id"], "unknown")
            files = {
                "mp4": str(root / row["clip_path"]),
                "first.png": str(root / row["first_frame_path"]) if row.get("first_frame_path") else None,
                "last.png": str(root / row["last_frame_path"]) if row.get("last_frame_path") else None,
            }
            sizes = [_file_size(path) for path in files.values()]
            sample = {"key": key, "files": files, "sizes": sizes, "json": sample_json(data).decode("utf-8")}
            need = sum(
                _member_bytes(f"{key}.{name}", max(n, 0)) for name, n in zip(files, sizes, strict=True)
            ) + _member_bytes(f"{key}.json", len(sample["json"].encode("utf-8")))
            full = config.shard_size is not None and len(current) >= config.shard_size
            over = (
                config.max_shard_bytes is not None
                and current
                and tar_bytes(size + need) > config.max_shard_bytes
            )
            if full or over:
                shards.append(_shard_row(prefix, split, index, current))
                index, current, size = index + 1, [], 0
            current.append(sample)
            size += need
        if current:
            shards.append(_shard_row(prefix, split, index, current))
    return shards


def _shard_row(prefix: str, split: str, index: int, samples: list[dict]) -> dict:
    return {
        "shard": prefix + shard_file_name(split, index),
        "split": split,
        "samples_json": json.dumps(samples),
    }


def plan_digest(shards: list[dict]) -> str:
    """What the shards will hold (names, keys, rows, file sizes): a changed dataset changes it."""
    digest = hashlib.sha256()
    for shard in shards:
        digest.update(shard["shard"].encode())
        for sample in json.loads(shard["samples_json"]):
            digest.update(json.dumps([sample["key"], sample["json"], sample["sizes"]]).encode())
    return digest.hexdigest()


class _Hasher:
    """sha256 of a stream, fed in order, computed on its own thread: hashlib drops the GIL while it
    hashes, so the hashing (the export's largest cost) overlaps with the copying."""

    def __init__(self) -> None:
        import queue
        import threading

        self.sha256 = hashlib.sha256()
        self._queue: queue.Queue = queue.Queue(maxsize=4)  # at most ~4 MiB waiting: bounded memory
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="export-sha256", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.sha256.update(item)
            except BaseException as error:  # noqa: BLE001 - re-raised by hexdigest on the caller's thread
                self._error = error

    def feed(self, item: bytes) -> None:
        self._queue.put(item)

    def hexdigest(self) -> str:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.sha256.hexdigest()


def _header(name: str, size: int) -> bytes:
    """A member header with nothing of this machine or this moment in it (byte-identical reruns):
    mode 0644, owner 0 with no names, time 0. A short ASCII name is one ustar block built here (what
    tarfile writes for it; a test holds them equal); a longer one gets tarfile's PAX header."""
    encoded = name.encode("ascii", "replace")
    if len(encoded) > 100 or not name.isascii() or size >= 8**11:
        info = tarfile.TarInfo(name)
        info.size, info.mode = size, 0o644
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info.tobuf(tarfile.PAX_FORMAT)
    head = encoded.ljust(100, NUL) + b"0000644\0" + b"0000000\0" * 2 + b"%011o\0" % size + b"00000000000\0"
    tail = b"0" + NUL * 100 + b"ustar\x0000" + NUL * (64 + 16 + 167)
    checksum = sum(head) + sum(b" " * 8) + sum(tail)
    return head + b"%06o\0 " % checksum + tail


def write_shard(path: Path, samples: list[dict]) -> tuple[int, str]:
    """Stream the samples into a tar at `path` (atomically); returns (bytes, sha256).

    The bytes are those of Python's tarfile writing the same members in PAX format (a test holds
    them equal): header, data padded to 512, two zero blocks, zeros up to a 10240-byte record. Data
    moves in 1 MiB chunks; the sha256 of each chunk runs beside the next read and write (`_Hasher`).
    """
    hasher = _Hasher()
    size = 0
    with atomic_path(path) as tmp, open(tmp, "wb", buffering=0) as out:

        def put(data: bytes) -> None:
            nonlocal size
            out.write(data)
            hasher.feed(data)
            size += len(data)

        for sample in samples:
            for name in FIELDS:
                member = f"{sample['key']}.{name}"
                if name == "json":
                    data = sample["json"].encode("utf-8")
                    put(_header(member, len(data)) + data + NUL * (-len(data) % BLOCK))
                    continue
                source = sample["files"][name]
                if not source:
                    raise FileNotFoundError(f"clip {sample['key']} has no {name} in its manifest row")
                with open(source, "rb", buffering=0) as clip:
                    length = os.fstat(clip.fileno()).st_size
                    put(_header(member, length))
                    left = length
                    while left > 0:
                        chunk = clip.read(min(COPY_BUFFER, left))
                        if not chunk:
                            raise OSError(f"{source} ended after {length - left} of {length} bytes")
                        put(chunk)
                        left -= len(chunk)
                put(NUL * (-length % BLOCK))
        put(NUL * (2 * BLOCK))
        put(NUL * (-size % tarfile.RECORDSIZE))
        digest = hasher.hexdigest()
    return size, digest


class ExportStage(Stage):
    """One shard row in (its samples), one EXPORT_SHARDS row out: written, or the reason it was not."""

    name = STAGE_NAME
    key = "shard"
    shard_size = 1  # one tar per unit of work: a killed run redoes at most the tars in flight

    def __init__(self, dest: Path, settings: dict) -> None:
        self.dest = Path(dest)
        self._settings = settings

    def settings(self) -> dict:
        return self._settings

    def _row(self, row: dict) -> dict:
        samples = json.loads(row["samples_json"])
        return empty_row(EXPORT_SHARDS) | {
            "shard": row["shard"],
            "split": row["split"],
            "samples": len(samples),
            "first_key": samples[0]["key"],
            "last_key": samples[-1]["key"],
        }

    def process_row(self, row: dict) -> list[dict]:
        size, sha = write_shard(self.dest / row["shard"], json.loads(row["samples_json"]))
        return [self._row(row) | {"status": STATUS_OK, "bytes": size, "sha256": sha}]

    def error_rows(self, row: dict, error: BaseException) -> list[dict]:
        code = "file_not_found" if isinstance(error, FileNotFoundError) else "export_failed"
        return [
            self._row(row) | {"status": STATUS_ERROR, "reason": describe_error(error), "reason_code": code}
        ]


def missing_shards(parts_dir: Path, dest: Path, keys: list[str]) -> set[str]:
    """Shards the ledger lists as written but that are gone or of another size on disk: the driver's
    `redo` keys, so they are written again."""
    done = [r for r in merge_parts(parts_dir, EXPORT_SHARDS, "shard", keys) if r["status"] == STATUS_OK]
    gone = {
        r["shard"]
        for r in done
        if not (dest / r["shard"]).is_file() or (dest / r["shard"]).stat().st_size != r["bytes"]
    }
    if gone:
        log.warning(
            "export: %d shard(s) listed as written are missing or changed in %s: writing them again",
            len(gone),
            dest,
        )
    return gone


def write_indexes(dest: Path, rows: list[dict], config: ExportConfig) -> list[str]:
    """`{split}-index.json` beside the shards of each split: names, samples, bytes, sha256."""
    written = []
    for split in sorted({r["split"] for r in rows}):
        shards = [r for r in rows if r["split"] == split]
        index = {
            "format": "webdataset",
            "schema_version": SCHEMA_VERSION,
            "split": split,
            "fields": list(FIELDS),
            "samples": sum(r["samples"] for r in shards),
            "bytes": sum(r["bytes"] for r in shards),
            "shards": [
                {k: r[k] for k in ("samples", "bytes", "sha256", "first_key", "last_key")}
                | {"name": Path(r["shard"]).name}
                for r in shards
            ],
        }
        folder = dest / Path(shards[0]["shard"]).parent
        path = folder / index_file_name(split)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        written.append(str(path.relative_to(dest)))
    return written


def run_export(
    root: Path, config: ExportConfig, progress=None, run: ExecutionConfig | None = None
) -> ExportSummary:
    """Export DIR's split into `config.dest` (resumable, deterministic); see the module docstring.

    `run`: the executor and its resources; one shard is the unit of work."""
    from sfi_data.export_hf import read_licences, write_hf_card

    check_choice("format", config.format, FORMATS)
    check_choice("split", config.split, (*SPLITS, "all"))
    if config.format == "hf" and config.split != "all":
        raise ValueError("--format hf writes both splits (load_dataset sees train and test): use --split all")
    root, dest = Path(root), Path(config.dest)
    licences = read_licences(root, config.license)
    shards = plan_export(root, config, licences)
    if not shards:
        raise ValueError(f"{root}'s split holds no clips to export")
    settings = {
        "format": config.format,
        "split": config.split,
        "shard_size": config.shard_size,
        "max_shard_bytes": config.max_shard_bytes,
        "plan_sha256": plan_digest(shards),
    }
    dest.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(dest)
    ledger = dest / LEDGER_DIR
    parts_dir = ledger / "work" / STAGE_NAME
    keys = [s["shard"] for s in shards]
    redo = missing_shards(parts_dir, dest, keys) if not config.overwrite and parts_dir.is_dir() else None
    run = (run or ExecutionConfig()).for_step(1, config.overwrite)
    stage = ExportStage(dest, settings)
    stage_summary = run_stage(stage, shards, ledger, EXPORT_SHARDS, run, progress, redo=redo)
    rows = merge_parts(parts_dir, EXPORT_SHARDS, "shard", keys)
    summary = ExportSummary(dest, config.format, shards=len(rows), skipped=stage_summary.skipped)
    summary.seconds = stage_summary.seconds
    summary.written = stage_summary.processed
    for row in rows:
        if row["status"] == STATUS_OK:
            summary.samples += row["samples"]
            summary.bytes += row["bytes"]
        else:
            summary.failed += 1
            summary.reasons.append(f"{row['shard']}: {row['reason']}")
    if summary.failed == 0:
        summary.indexes = write_indexes(dest, rows, config)
        if config.format == "hf":
            summary.indexes.append(write_hf_card(root, dest, rows, licences, config))
    return summary
