"""`sfi-data export --format hf`: the WebDataset shards under DEST/data/ plus a Hub dataset card.

`datasets.load_dataset(DEST)` reads the folder as it is: the card's YAML `configs` name the train and
test shards. The card's metadata (licence, task and size categories) follows the Hub's dataset-card
fields; its body is the dataset's own DATASET_CARD.md (with its plots) and how to load the shards.
Nothing is uploaded: `huggingface_hub.upload_folder` does that, told to leave the ledger out.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from sfi_core.manifest import atomic_path
from sfi_core.shards import json_fields
from sfi_data.config_dataset import ExportConfig

LICENCES_FILE = "licenses.json"  # optional, the user's: {"<source or glob>": "<SPDX id>"}
CARD = "README.md"
TASK_CATEGORIES = ["image-to-video"]
# The Hub's size categories (number of examples), smallest first: (upper bound, label).
SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


def size_category(samples: int) -> str:
    for bound, label in SIZE_CATEGORIES:
        if samples < bound:
            return label
    return "n>1T" if samples >= 10**12 else "1B<n<10B"


def read_licences(root: Path, licence: str | None) -> dict[str, str]:
    """video_id -> licence: `licence` for every source when given, else DIR/licenses.json's patterns
    matched on each source (first match wins), else nothing (the export says `unknown`)."""
    videos = root / "videos.parquet"
    if not videos.is_file():
        return {}
    rows = pq.read_table(videos, columns=["video_id", "source"]).to_pylist()
    if licence:
        return {r["video_id"]: licence for r in rows}
    path = root / LICENCES_FILE
    if not path.is_file():
        return {}
    try:
        patterns = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(
            f'{path} is not JSON ({error}): write {{"<source or glob>": "<SPDX id>"}}'
        ) from error
    if not isinstance(patterns, dict) or not all(isinstance(v, str) for v in patterns.values()):
        raise ValueError(f'{path} must map sources (or globs) to licence ids, e.g. {{"*.mp4": "cc-by-4.0"}}')
    found = {}
    for row in rows:
        for pattern, value in patterns.items():
            if fnmatch.fnmatch(row["source"] or "", pattern):
                found[row["video_id"]] = value
                break
    return found


HF_DTYPES = {"string": "string", "int32": "int32", "int64": "int64", "double": "float64", "float": "float32"}


def card_features() -> list[dict]:
    """The features of a sample, in the card's YAML form (what `datasets` would otherwise infer)."""
    row = [{"name": name, "dtype": HF_DTYPES[kind]} for name, kind in json_fields()]
    # The clip as raw bytes: a `video` feature would need torchcodec to read any row at all.
    media = [{"name": "mp4", "dtype": "binary"}, {"name": "first.png", "dtype": "image"}]
    media += [{"name": "last.png", "dtype": "image"}, {"name": "json", "struct": row}]
    return media + [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]


def card_metadata(root: Path, rows: list[dict], licences: dict[str, str]) -> dict:
    """The card's YAML: Hub fields (pretty_name, license, task/size categories, tags) and configs."""
    splits = sorted({r["split"] for r in rows}, key=lambda s: ("train", "test").index(s))
    samples = sum(r["samples"] for r in rows)
    used = sorted(set(licences.values()))
    licence: str | list[str] = "unknown" if not used else used[0] if len(used) == 1 else used
    return {
        "pretty_name": f"SFI clips ({root.resolve().name})",
        "license": licence,
        "task_categories": TASK_CATEGORIES,
        "tags": ["video", "frame-interpolation", "semantic-frame-interpolation", "webdataset", "sfi"],
        "size_categories": [size_category(samples)],
        "dataset_info": {
            "features": card_features(),
            "splits": [
                {
                    "name": split,
                    "num_examples": sum(r["samples"] for r in rows if r["split"] == split),
                    "num_bytes": sum(r["bytes"] for r in rows if r["split"] == split),
                }
                for split in splits
            ],
        },
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}-*.tar"} for split in splits],
            }
        ],
    }


def card_body(root: Path, rows: list[dict]) -> str:
    counts = {split: sum(r["samples"] for r in rows if r["split"] == split) for split in ("train", "test")}
    own = root / "DATASET_CARD.md"
    lines = [
        "## Loading",
        "",
        f"{counts['train']} train and {counts['test']} test clips in WebDataset shards under `data/`, one sample per "
        "clip: `mp4` (the clip as cut), `first.png` and `last.png` (lossless end frames) and `json` (its "
        "manifest row: ids, frames, fps, size, scores, caption and its model, split, category, licence). "
        "`{split}-index.json` lists every shard with its sha256.",
        "",
        "```python",
        "import datasets",
        "ds = datasets.load_dataset(PATH)  # or the Hub id",
        'row = ds["train"][0]  # row["mp4"]: the clip\'s bytes (decode with PyAV, decord or torchcodec)',
        'row["json"]["caption"], row["json"]["category"], row["first.png"].size',
        "```",
        "",
        "Uploading (nothing is uploaded by `sfi-data export`): `huggingface_hub.upload_folder(folder_path=PATH, "
        'repo_id=..., repo_type="dataset", ignore_patterns=[".sfi-export/*"])`.',
        "",
    ]
    if own.is_file():
        text = own.read_text(encoding="utf-8")
        lines += ["#" + line if line.startswith("# ") else line for line in text.splitlines()]
    return "\n".join(lines)


def write_hf_card(
    root: Path, dest: Path, rows: list[dict], licences: dict[str, str], config: ExportConfig
) -> str:
    """DEST/README.md (YAML front matter + body) and the card's plots under DEST/stats/."""
    stats = root / "stats"
    if stats.is_dir():
        (dest / "stats").mkdir(exist_ok=True)
        for plot in sorted(stats.glob("*.png")):
            shutil.copyfile(plot, dest / "stats" / plot.name)
    meta = yaml.safe_dump(card_metadata(root, rows, licences), sort_keys=False, allow_unicode=True)
    with atomic_path(dest / CARD) as tmp:
        tmp.write_text(f"---\n{meta}---\n\n{card_body(root, rows)}", encoding="utf-8")
    return CARD
