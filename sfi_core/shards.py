"""The WebDataset layout of exported clips, defined once: what `sfi-data export` writes and training reads.

A shard is a plain POSIX tar (`{split}-{000000}.tar`) holding one sample per clip, its members side
by side and named `{key}.{field}`:

    {key}.mp4        the clip, the bytes `sfi-data cut` wrote
    {key}.first.png  the lossless first frame (the benchmark's condition image)
    {key}.last.png   the lossless last frame
    {key}.json       the clip's manifest row: ids, frames, fps, size, scores, caption, split, category

Beside the shards, `{split}-index.json` lists every shard with its sample count, bytes and sha256.
`webdataset.WebDataset(urls)` and `datasets.load_dataset("webdataset", data_files=...)` read the
shards as they are; `ShardIndex` below reads them without either package (training, the tests).
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Members of one sample, in the order they are written (WebDataset readers need a sample's members
# adjacent; the order inside a sample is ours).
FIELDS: tuple[str, ...] = ("mp4", "first.png", "last.png", "json")
SPLITS: tuple[str, ...] = ("train", "test")
INDEX_SUFFIX = "-index.json"
# Row columns that name files in the dataset folder: meaningless inside a shard, left out of `json`.
FOLDER_PATHS: tuple[str, ...] = ("clip_path", "first_frame_path", "last_frame_path")

# Columns the `json` member adds to the split's row (all strings).
EXTRA_JSON = ("key", "caption_model", "caption_prompt_version", "license")


def json_fields() -> list[tuple[str, str]]:
    """(name, Arrow type name) of every `json` field, sorted as written: the card declares them, so a
    reader never guesses a type from a first sample whose value is null."""
    from sfi_core.schemas import SPLIT

    fields = {f.name: str(f.type) for f in SPLIT if f.name not in FOLDER_PATHS}
    return sorted(fields.items() | {(name, "string") for name in EXTRA_JSON})


def shard_file_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def index_file_name(split: str) -> str:
    return f"{split}{INDEX_SUFFIX}"


def sample_key(clip_id: str) -> str:
    """A WebDataset key for a clip: readers cut a member's name at its first dot, so the key holds
    none (clip ids come from file stems, which may): every other character becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", clip_id)


def expand_braces(pattern: str) -> list[str]:
    """`train-{000000..000012}.tar` -> the 13 names (zero padding kept), as WebDataset and bash do."""
    match = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if match is None:
        return [pattern]
    first, last = match.group(1), match.group(2)
    width = len(first) if first.startswith("0") else 0
    head, tail = pattern[: match.start()], pattern[match.end() :]
    names = [f"{head}{i:0{width}d}{tail}" for i in range(int(first), int(last) + 1)]
    return [name for item in names for name in expand_braces(item)]


def is_shard_source(source: str | Path) -> bool:
    """Whether a training source names shards (tar files, a brace pattern, an index) not a manifest."""
    text = str(source)
    return text.endswith(".tar") or text.endswith(INDEX_SUFFIX) or bool(re.search(r"\{\d+\.\.\d+\}", text))


def shard_paths(sources: Iterable[str | Path]) -> list[Path]:
    """Tar paths from tar files, brace patterns and `{split}-index.json` files, in the order given."""
    paths: list[Path] = []
    for source in sources:
        text = str(source)
        if text.endswith(INDEX_SUFFIX):
            index = json.loads(Path(text).read_text(encoding="utf-8"))
            paths += [Path(text).parent / shard["name"] for shard in index["shards"]]
        else:
            paths += [Path(name) for name in expand_braces(text)]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} shard(s) not found, e.g. {missing[0]}: export them with "
            "`sfi-data export --out DIR --format webdataset --dest SHARDS` or fix the path"
        )
    return paths


@dataclass
class Sample:
    """Where one sample's members lie: shard path -> (offset, size) per field, and its row."""

    key: str
    shard: Path
    members: dict[str, tuple[int, int]] = field(default_factory=dict)
    row: dict = field(default_factory=dict)

    def read(self, name: str) -> bytes:
        offset, size = self.members[name]
        with open(self.shard, "rb") as handle:
            handle.seek(offset)
            return handle.read(size)


def split_member(name: str) -> tuple[str, str]:
    """`dir/key.first.png` -> (`dir/key`, `first.png`): the WebDataset rule (first dot of the basename)."""
    folder, _, base = name.rpartition("/")
    key, _, suffix = base.partition(".")
    return (f"{folder}/{key}" if folder else key), suffix


def index_shard(path: Path) -> list[Sample]:
    """The samples of one shard, in order, from its tar headers (data is skipped, not read) and the
    small `json` members; a sample missing a field is an error naming the shard and the key."""
    samples: dict[str, Sample] = {}
    with tarfile.open(path, "r:") as tar:
        for info in tar:
            if not info.isfile():
                continue
            key, suffix = split_member(info.name)
            sample = samples.setdefault(key, Sample(key, Path(path)))
            sample.members[suffix] = (info.offset_data, info.size)
    for sample in samples.values():
        absent = [name for name in FIELDS if name not in sample.members]
        if absent:
            raise ValueError(f"{path}: sample {sample.key} has no {', '.join(absent)} member")
        sample.row = json.loads(sample.read("json"))
    return list(samples.values())
