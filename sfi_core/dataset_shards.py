"""Training straight from WebDataset shards (`sfi-data export`): no dataset folder on shared storage.

`ShardClipDataset` indexes the tars once (headers and the small `json` members: where each sample's
bytes lie) and then reads one sample's members by offset per item, so it is a map-style dataset with
the same items, sizes and batch keys as `SFIClipDataset`: `ScaleBatchSampler` keeps one scale per
batch over it unchanged, and the trainer takes either (`make_clip_dataset`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sfi_core.dataset import SFIClipDataset
from sfi_core.shards import Sample, index_shard, is_shard_source, shard_paths
from sfi_core.video import VideoError


def _png(data: bytes, what: str) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise VideoError(f"could not decode {what}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ShardClipDataset(SFIClipDataset):
    """The clips of WebDataset shards (tar paths, `train-{000000..000012}.tar` patterns, or an index)."""

    def __init__(
        self,
        sources: Sequence[str | Path],
        size: tuple[int, int] = (480, 832),
        resize: str = "fit",
        scales: Sequence[int] | None = None,
        require_caption: bool = False,
    ) -> None:
        self.paths = shard_paths(sources)
        self.manifest_path = self.paths[0]
        self.samples: list[Sample] = [sample for path in self.paths for sample in index_shard(path)]
        rows = [s.row | {"_sample": i} for i, s in enumerate(self.samples)]
        self._take(self.paths[0].parent, size, resize, rows, scales, require_caption, ("_sample",))

    def _sample(self, row: dict) -> Sample:
        return self.samples[row["_sample"]]

    def _clip_source(self, row: dict):
        sample = self._sample(row)
        return io.BytesIO(sample.read("mp4")), sample.shard

    def _condition_image(self, row: dict, key: str) -> np.ndarray | None:
        name = {"first_frame_path": "first.png", "last_frame_path": "last.png"}[key]
        sample = self._sample(row)
        return _png(sample.read(name), f"{name} of {row['clip_id']} in {sample.shard}")


def make_clip_dataset(
    sources: Sequence[str | Path],
    size: tuple[int, int] = (480, 832),
    resize: str = "fit",
    scales: Sequence[int] | None = None,
    captions_path: str | Path | None = None,
    require_caption: bool = False,
) -> SFIClipDataset:
    """A manifest (one parquet path) or WebDataset shards (tar paths, patterns, an index) as a dataset."""
    sources = list(sources)
    if sources and all(is_shard_source(s) for s in sources):
        if captions_path is not None:
            raise ValueError("shards carry their captions in each sample's json: leave out --captions")
        return ShardClipDataset(sources, size, resize, scales, require_caption)
    if len(sources) != 1:
        raise ValueError(
            f"give one manifest (e.g. DIR/train.parquet) or WebDataset shards (.tar), not {sources}"
        )
    return SFIClipDataset(sources[0], size, resize, scales, captions_path, require_caption)
