"""Atomic Parquet writes and the part files of resumable stages: their names, generations and order.

The one merge of part files (which rows win) is sfi_core.manifest_table.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sfi_core.schemas import to_table


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it over `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); outputs get the usual permissions (0666 less the umask).
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_rows(rows: list[dict], schema: pa.Schema, path: Path) -> None:
    write_table(to_table(rows, schema), path)


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


# part-{generation}-{digest of its keys}.parquet; parts written before generations are part-{digest}.parquet.
PART_NAME = re.compile(r"^part-(?:(\d+)-)?[0-9a-f]+\.parquet$")


def shard_name(keys: list[str], generation: int) -> str:
    """A part-file name: the run's generation, then a digest of the keys it holds.

    The generation orders parts: a later run's part (an error retried) supersedes an earlier one by
    its name, not its file time, which a `cp -r` or an rsync without -t resets.
    """
    digest = hashlib.sha1("\n".join(keys).encode("utf-8")).hexdigest()[:16]
    return f"part-{generation:06d}-{digest}.parquet"


def part_generation(part: Path) -> int:
    """The generation in a part's name (0 for a part named before generations)."""
    match = PART_NAME.match(part.name)
    return int(match.group(1)) if match and match.group(1) else 0


def next_generation(parts_dir: Path) -> int:
    """One more than the newest generation among the parts in `parts_dir` (1 for none)."""
    parts = list(Path(parts_dir).glob("part-*.parquet")) if Path(parts_dir).exists() else []
    return 1 + max((part_generation(part) for part in parts), default=0)


def parts_newest_first(parts_dir: Path) -> list[Path]:
    """Part files, the newest first: a rerun's part (an error retried) supersedes an earlier one.

    Newest is the highest generation in the name; only parts written before generations (all 0) fall
    back to their file times among themselves.
    """
    if not parts_dir.exists():
        return []
    parts = [
        (part_generation(part), part.stat().st_mtime_ns, part.name, part)
        for part in parts_dir.glob("part-*.parquet")
    ]
    return [part for *_, part in sorted(parts, reverse=True)]
