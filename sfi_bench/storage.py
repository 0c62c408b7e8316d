"""The run directory: lossless generated frames (FFV1 or PNG) and one metadata record per clip.

Layout of RUNDIR:
    run.json                  what was run: model, version, options, the test manifest
    frames/{clip_id}.mkv      FFV1 (bgr0, bit-exact RGB) -- or frames/{clip_id}/{i:04d}.png
    work/generate/            the per-clip records: the shared driver's part files (sfi_core.driver), one
                              row per clip, the newest part wins; they are the run's completion ledger
                              (beside them settings.json, what shaped the frames: a rerun with other
                              settings is refused) -- runs made before the ledger kept meta/{clip_id}.json
    generations.parquet       every per-clip record, gathered at the end of a run

No lossy encoder ever touches generated frames, so the metrics see exactly what the model produced.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sfi_core.manifest import atomic_path
from sfi_core.video import encode_video

STORE_FORMATS = ("ffv1", "png")
STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"  # the model cannot make this N (e.g. FILM without resampling); reason says why
STATUS_ERROR = "error"
STATUS_MISSING = "missing"  # import: no video for this clip in the folder
FINAL_STATUSES = (STATUS_OK, STATUS_SKIPPED)  # a rerun redoes errors and missing clips, nothing else


@dataclass
class ClipRecord:
    """What the harness knows about one generated clip (one JSON file, one row of generations.parquet)."""

    clip_id: str
    model: str
    model_version: str
    status: str
    num_frames: int
    reason: str | None = None
    frames_path: str | None = None  # relative to RUNDIR
    store_format: str | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    seconds: float | None = None  # the model's forward pass for this clip (a batch's time split evenly)
    batch_size: int | None = None
    native_num_frames: int | None = None  # what the model generated before temporal resampling
    resampled: bool = False
    resample_mode: str | None = None
    resized_from: str | None = None  # "WxH" when the model returned another size than the clip
    prompt: str | None = None
    source: str = "run"  # run | import
    info: dict[str, Any] = field(default_factory=dict)  # the model's own SFIResult.info

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["info"] = json.dumps(self.info, sort_keys=True, default=str)
        return row


def _record_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("clip_id", pa.string()),
            ("model", pa.string()),
            ("model_version", pa.string()),
            ("status", pa.string()),
            ("num_frames", pa.int64()),
            ("reason", pa.string()),
            ("frames_path", pa.string()),
            ("store_format", pa.string()),
            ("width", pa.int64()),
            ("height", pa.int64()),
            ("seed", pa.int64()),
            ("seconds", pa.float64()),
            ("batch_size", pa.int64()),
            ("native_num_frames", pa.int64()),
            ("resampled", pa.bool_()),
            ("resample_mode", pa.string()),
            ("resized_from", pa.string()),
            ("prompt", pa.string()),
            ("source", pa.string()),
            ("info", pa.string()),  # the model's info dict as JSON
        ]
    )


# One row of generations.parquet (and of the per-shard part files), ClipRecord.to_row() shaped.
RECORD_SCHEMA = _record_schema()


# The generate stage's part files under RUNDIR: the per-clip records.
LEDGER = Path("work") / "generate"


def record_of_row(row: dict[str, Any]) -> ClipRecord:
    """A ledger row (ClipRecord.to_row) back to its record."""
    values = dict(row)
    values["info"] = json.loads(values.get("info") or "{}")
    values["resampled"] = bool(values.get("resampled"))
    return ClipRecord(**values)


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


class FrameStore:
    """Read and write one run directory."""

    def __init__(self, run_dir: Path, store_format: str = "ffv1") -> None:
        if store_format not in STORE_FORMATS:
            raise ValueError(f"unknown store format {store_format!r}; use one of {', '.join(STORE_FORMATS)}")
        self.run_dir = Path(run_dir)
        self.store_format = store_format
        self._records: dict[str, ClipRecord] | None = None

    # ---- run-level facts ----
    @property
    def run_json(self) -> Path:
        return self.run_dir / "run.json"

    def write_run_info(self, info: dict[str, Any]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _write_text(self.run_json, json.dumps(info, indent=2, sort_keys=True, default=str))

    def read_run_info(self) -> dict[str, Any]:
        if not self.run_json.is_file():
            raise FileNotFoundError(
                f"{self.run_json} not found: {self.run_dir} is not a run directory. "
                f"Make one with `sfi-bench run --model NAME --clips TEST.parquet --out {self.run_dir}`."
            )
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    # ---- per-clip records: the generate stage's part files ----
    @property
    def ledger_dir(self) -> Path:
        return self.run_dir / LEDGER

    def _all(self) -> dict[str, ClipRecord]:
        """clip_id -> its newest record, read once per FrameStore (write_record keeps it current)."""
        if self._records is None:
            from sfi_core.manifest_table import merge_parts

            rows = merge_parts(self.ledger_dir, RECORD_SCHEMA, "clip_id")
            self._records = {row["clip_id"]: record_of_row(row) for row in rows}
            legacy = self.run_dir / "meta"
            if not self._records and legacy.is_dir():  # a run directory from before the ledger
                for path in sorted(legacy.glob("*.json")):
                    record = ClipRecord(**json.loads(path.read_text(encoding="utf-8")))
                    self._records[record.clip_id] = record
        return self._records

    def read_record(self, clip_id: str) -> ClipRecord | None:
        return self._all().get(clip_id)

    def records(self) -> list[ClipRecord]:
        return [self._all()[clip_id] for clip_id in sorted(self._all())]

    def is_finished(self, clip_id: str) -> bool:
        record = self.read_record(clip_id)
        return record is not None and record.status in FINAL_STATUSES

    def write_records(self, records: list[ClipRecord]) -> None:
        """Append records to the ledger as one part of a newer generation (what `import` writes; a
        generate run's parts come from the driver)."""
        from sfi_core.manifest import next_generation, shard_name, write_rows

        if not records:
            return
        name = shard_name([r.clip_id for r in records], next_generation(self.ledger_dir))
        write_rows([r.to_row() for r in records], RECORD_SCHEMA, self.ledger_dir / name)
        self._all().update({r.clip_id: r for r in records})

    def write_record(self, record: ClipRecord) -> None:
        self.write_records([record])

    def record_digest(self, clip_id: str) -> str:
        """A digest of a clip's record: frames generated again (a new record) invalidate its scores."""
        import hashlib

        record = self.read_record(clip_id)
        text = json.dumps(record.to_row() if record else None, sort_keys=True, default=str)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def write_generations_table(self) -> Path:
        """Gather every per-clip record into generations.parquet (one row per clip)."""
        import pyarrow as pa

        from sfi_core.manifest import write_table

        path = self.run_dir / "generations.parquet"
        write_table(pa.Table.from_pylist([r.to_row() for r in self.records()], schema=RECORD_SCHEMA), path)
        return path

    # ---- frames ----
    def frames_relpath(self, clip_id: str) -> str:
        return f"frames/{clip_id}.mkv" if self.store_format == "ffv1" else f"frames/{clip_id}"

    def write_frames(self, clip_id: str, frames: np.ndarray, fps: float = 25.0) -> str:
        """Store uint8 RGB (N, H, W, 3) losslessly; returns the path relative to RUNDIR."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
        relpath = self.frames_relpath(clip_id)
        target = self.run_dir / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.store_format == "ffv1":
            with atomic_path(target) as tmp:
                write_ffv1(frames, tmp, fps)
        else:
            write_png_folder(frames, target)
        return relpath

    def read_frames(self, relpath: str) -> np.ndarray:
        return read_lossless(self.run_dir / relpath)


def write_ffv1(frames: np.ndarray, path: Path, fps: float = 25.0) -> None:
    """FFV1 in Matroska with pix_fmt bgr0: bit-exact RGB, any width and height."""
    encode_video(
        frames, path, fps, codec="ffv1", pix_fmt="bgr0", crf=None, preset=None, container_format="matroska"
    )


def write_png_folder(frames: np.ndarray, folder: Path) -> None:
    """One PNG per frame; the folder is filled under a temporary name and renamed when complete."""
    import shutil

    import cv2

    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for index, image in enumerate(frames):
        if not cv2.imwrite(str(tmp / f"{index:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {tmp / f'{index:04d}.png'}")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def read_image_folder(folder: Path) -> np.ndarray:
    """Every image in `folder`, in natural name order (frame2 before frame10), as uint8 RGB."""
    import re

    import cv2

    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")

    def natural(path: Path) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    images = []
    for path in sorted(files, key=natural):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"could not read image {path}")
        images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return np.stack(images)


def read_lossless(path: Path) -> np.ndarray:
    """Frames from an FFV1 file or a PNG folder (or any video/folder of images) as uint8 RGB."""
    if path.is_dir():
        return read_image_folder(path)
    from sfi_core.video import decode_all

    return decode_all(path)
