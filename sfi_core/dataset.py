"""A PyTorch dataset over a clips manifest, and a batch sampler that keeps one scale per batch."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from sfi_core.clips import read_clip_manifest
from sfi_core.resize import cover_and_crop, fit_area, quantize_uint8
from sfi_core.video import VideoError, decode_all

# "fit": the shared rule (sfi_core.resize): aspect kept, area of `size`, sides % 16 (what inference does).
# "crop": exactly `size`, centre crop. "stretch": exactly `size`, each side scaled on its own.
RESIZE_MODES = ("fit", "crop", "stretch")


def load_manifest_rows(manifest_path: Path, captions_path: Path | None = None) -> list[dict]:
    """The usable clips of a manifest (status ok), each with a `caption`; see sfi_core.clips."""
    return read_clip_manifest(manifest_path, captions_path)


def resize_frames(frames: torch.Tensor, size: tuple[int, int], mode: str = "crop") -> torch.Tensor:
    """Resize float frames (T, 3, h, w) to `size` ("crop", "stretch") or to fit its area ("fit")."""
    if mode == "fit":
        size = fit_area(frames.shape[-2], frames.shape[-1], size)
        mode = "crop"
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    if mode == "stretch":
        out = torch.nn.functional.interpolate(frames, size=size, mode="bilinear", antialias=True)
        return out.clamp_(0.0, 1.0)
    if mode == "crop":
        return cover_and_crop(frames, size)
    raise ValueError(f"unknown resize mode {mode!r}; choose one of {RESIZE_MODES}")


def _to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB (T, H, W, 3) to float32 (T, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def _read_png(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"could not read the condition image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class SFIClipDataset(Dataset):
    """Clips of a manifest (clips.parquet, train.parquet or test.parquet), decoded lazily per item.

    Each item is a dict: "frames" float32 (N, 3, H, W) in [0, 1], "first_frame" and "last_frame"
    (3, H, W) (the lossless PNG condition frames when the manifest has them, else the clip's ends),
    "caption" (str, "" when the clip has none), "num_frames", "clip_id", "video_id".
    Paths in the manifest are relative to its folder (the dataset root).
    """

    def __init__(
        self,
        manifest_path: str | Path,
        size: tuple[int, int] = (480, 832),
        resize: str = "fit",
        scales: Sequence[int] | None = None,
        captions_path: str | Path | None = None,
        require_caption: bool = False,
    ) -> None:
        self.manifest_path = Path(manifest_path)
        rows = load_manifest_rows(self.manifest_path, Path(captions_path) if captions_path else None)
        self._take(self.manifest_path.parent, size, resize, rows, scales, require_caption)

    # Item columns: small rows pickle fast into DataLoader workers.
    KEEP = ("clip_id", "video_id", "num_frames", "clip_path", "first_frame_path", "last_frame_path")
    KEEP += ("caption", "width", "height")

    def _take(self, root, size, resize, rows, scales, require_caption, extra: tuple[str, ...] = ()) -> None:
        """Keep the rows of `scales` (and with a caption, if required), the columns items need."""
        if resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {resize!r}; choose one of {RESIZE_MODES}")
        self.root = Path(root)
        self.size = (int(size[0]), int(size[1]))
        self.resize = resize
        if scales is not None:
            wanted = set(int(s) for s in scales)
            rows = [row for row in rows if int(row["num_frames"]) in wanted]
        if require_caption:
            rows = [row for row in rows if row.get("caption")]
        self.rows = [{key: row.get(key) for key in self.KEEP + extra} for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def num_frames(self) -> list[int]:
        """The scale (frame count) of every item, in index order."""
        return [int(row["num_frames"]) for row in self.rows]

    def output_size(self, index: int) -> tuple[int, int]:
        """(height, width) of item `index`'s frames, from the manifest (no decoding)."""
        row = self.rows[index]
        if self.resize != "fit":
            return self.size
        if not row.get("width") or not row.get("height"):
            raise ValueError(f"clip {row['clip_id']} has no width/height in {self.manifest_path}")
        return fit_area(int(row["height"]), int(row["width"]), self.size)

    @property
    def batch_keys(self) -> list[tuple[int, int, int]]:
        """(num_frames, height, width) of every item: items that may share a batch have the same key."""
        return [(n, *self.output_size(i)) for i, n in enumerate(self.num_frames)]

    def _clip_source(self, row: dict):
        """What the clip decodes from (a path here; the clip's bytes for shards) and where it lies."""
        path = self.root / row["clip_path"]
        return path, path

    def _decode(self, row: dict) -> np.ndarray:
        source, where = self._clip_source(row)
        frames = decode_all(source)
        expected = int(row["num_frames"])
        if len(frames) < expected:
            raise VideoError(
                f"clip {row['clip_id']} ({where}) has {len(frames)} frames, its row says {expected}"
            )
        return frames[:expected]

    def _condition_image(self, row: dict, key: str) -> np.ndarray | None:
        """The lossless PNG condition frame `key` names, or None when the manifest has none."""
        rel = row.get(key)
        return _read_png(self.root / rel) if rel else None

    def _condition(self, row: dict, key: str, fallback: np.ndarray) -> torch.Tensor:
        image = self._condition_image(row, key)
        image = fallback if image is None else image
        # The condition frames on the 8-bit grid, as inference's uint8 endpoints are (same encoder inputs).
        return quantize_uint8(resize_frames(_to_float(image[None]), self.size, self.resize)[0])

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        raw = self._decode(row)
        frames = resize_frames(_to_float(raw), self.size, self.resize)
        return {
            "frames": frames.contiguous(),
            "first_frame": self._condition(row, "first_frame_path", raw[0]).contiguous(),
            "last_frame": self._condition(row, "last_frame_path", raw[-1]).contiguous(),
            "caption": row["caption"] or "",
            "num_frames": int(row["num_frames"]),
            "clip_id": row["clip_id"],
            "video_id": row["video_id"],
        }


class ScaleBatchSampler(Sampler[list[int]]):
    """Index batches that each hold clips of one scale and size (SemFi trains one LoRA scale per step).

    Batches are shuffled within and across scales from `seed + epoch`; each pass advances the epoch,
    or call `set_epoch`. With `num_replicas > 1` every rank takes its share of the same batch order
    (trailing batches that do not divide evenly are dropped so all ranks step together).
    """

    def __init__(
        self,
        dataset: SFIClipDataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        # One scale and one generation size per batch: tensors of a batch stack, and the step trains one expert.
        keys = dataset.batch_keys if hasattr(type(dataset), "batch_keys") else dataset.num_frames
        by_scale: dict = defaultdict(list)
        for index, key in enumerate(keys):
            by_scale[key].append(index)
        self.by_scale = dict(sorted(by_scale.items()))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        batches: list[list[int]] = []
        for indices in self.by_scale.values():
            order = list(indices)
            if self.shuffle:
                order = [order[i] for i in rng.permutation(len(order))]
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[:usable]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._all_batches()
        self.epoch += 1
        yield from batches[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        total = 0
        for indices in self.by_scale.values():
            total += (
                len(indices) // self.batch_size
                if self.drop_last
                else math.ceil(len(indices) / self.batch_size)
            )
        return total // self.num_replicas
