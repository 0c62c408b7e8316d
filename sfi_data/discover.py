"""Discover: turn folders, globs, files and list files into input rows with deterministic video ids."""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from sfi_core.video import sniff_video

# The fast path of a folder scan: extensions of FFmpeg's video demuxers (containers, elementary
# streams, camera and game formats). Any other file is opened and taken if FFmpeg finds video in it.
VIDEO_EXTENSIONS = frozenset(
    ".3g2 .3gp .264 .265 .amv .asf .avi .avs .bik .dif .divx .dv .dvr-ms .f4v .flc .fli .flv .gxf .h261"
    " .h263 .h264 .h265 .hevc .ivf .m1v .m2t .m2ts .m2v .m4v .mj2 .mjpeg .mjpg .mk3d .mkv .mod .mov .mp4"
    " .mpe .mpeg .mpg .mpv .mts .mve .mxf .nsv .nut .obu .ogm .ogv .ogx .qt .r3d .rm .rmvb .roq .smk .swf"
    " .tod .tp .trp .ts .vc1 .vob .webm .wmv .wtv .xvid .y4m".split()
)
# Files a folder scan never opens: text, documents, code, archives, stills and sound (FFmpeg would read a
# still image or an ANSI text file as a one-frame "video").
NOT_VIDEO_EXTENSIONS = frozenset(
    ".txt .md .rst .json .jsonl .yaml .yml .toml .csv .tsv .xml .html .htm .css .js .py .pyc .sh .c .h"
    " .pdf .doc .docx .zip .tar .gz .bz2 .xz .zst .7z .whl .deb .png .jpg .jpeg .bmp .tif .tiff .webp"
    " .svg .ico .gif .psd .exr .hdr .wav .mp3 .flac .aac .m4a .opus .oga .wma .mid .srt .vtt .ass .sub"
    " .idx .log .lock .part .tmp .parquet .npy .npz .pt .pth .safetensors .bin .ckpt .onnx .ttf .otf".split()
)
LIST_EXTENSIONS = {".txt", ".lst", ".parquet"}


def video_id_for(path: str | Path) -> str:
    """Readable and deterministic: a slug of the file stem plus a hash of its absolute path."""
    absolute = os.path.abspath(os.fspath(path))
    # Path(absolute).stem's rule without building a Path: pathlib interns every path part for the life
    # of the process, which for a million listed inputs is a million names never freed.
    name = os.path.basename(absolute)
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:40] or "video"
    digest = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{slug}-{digest}"


def _read_list(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        column = next((c for c in ("path", "source", "video_path", "url") if c in table.column_names), None)
        if column is None:
            raise ValueError(f"{path}: a list in Parquet needs a 'path' column; found {table.column_names}")
        base = path.parent
        return [str(p) if os.path.isabs(p) else str(base / p) for p in table.column(column).to_pylist()]
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [e if os.path.isabs(e) else str(path.parent / e) for e in entries]


def is_video_file(name: str, path: str, skipped: Counter | None) -> bool:
    """Whether a folder scan takes this file; a file it leaves is counted in `skipped` by extension."""
    suffix = Path(name).suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix not in NOT_VIDEO_EXTENSIONS and sniff_video(Path(path)):
        return True
    if skipped is not None:
        skipped[suffix or "(no extension)"] += 1
    return False


def expand_inputs(
    inputs: Iterable[str], list_files: Iterable[str] = (), skipped: Counter | None = None
) -> list[str]:
    """Every input path, in a stable order, without duplicates. Missing paths are kept (they get a row).

    A folder is scanned for every file FFmpeg reads as video (`is_video_file`); the files it leaves
    are counted in `skipped` by extension. Named files, globs and lists are taken as they are.
    """
    found: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    if is_video_file(name, full, skipped):
                        found.append(full)
        elif any(ch in item for ch in "*?[") and not path.exists():
            found.extend(sorted(glob.glob(item, recursive=True)))
        elif path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            found.extend(_read_list(path))
        else:
            found.append(item)
    for list_file in list_files:
        found.extend(_read_list(Path(list_file)))
    seen: set[str] = set()
    unique = []
    for item in found:
        key = os.path.abspath(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def skipped_note(skipped: Counter) -> str | None:
    """'skipped 3 files that are not video: .txt 2, .json 1', or None where a scan skipped nothing."""
    if not skipped:
        return None
    total = sum(skipped.values())
    kinds = ", ".join(
        f"{ext} {count}" for ext, count in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return f"skipped {total} file{'s' if total != 1 else ''} that {'are' if total != 1 else 'is'} not video: {kinds}"


def discover(
    inputs: Iterable[str], root: Path, list_files: Iterable[str] = (), skipped: Counter | None = None
) -> list[dict]:
    """Input rows: video_id, source (as named), path (relative to the dataset root `root`)."""
    rows = []
    for item in expand_inputs(inputs, list_files, skipped):
        rows.append(
            {
                "video_id": video_id_for(item),
                "source": item,
                "path": os.path.relpath(os.path.abspath(item), os.path.abspath(root)),
            }
        )
    return rows
