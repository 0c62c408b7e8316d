"""Atomic Parquet writes, per-shard part files and their merge: the basis of resumable stages."""

from __future__ import annotations

import contextlib
import hashlib
import os
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


def shard_name(keys: list[str]) -> str:
    """A part-file name that depends only on the keys it holds, so reruns find finished shards."""
    digest = hashlib.sha1("\n".join(keys).encode("utf-8")).hexdigest()[:16]
    return f"part-{digest}.parquet"


def merge_parts(parts_dir: Path, schema: pa.Schema, key: str, wanted: list[str] | None = None) -> list[dict]:
    """Read every part file, keep one row per `key` (the newest file wins), in `wanted` order if given."""
    newest: dict[str, tuple[float, dict]] = {}
    if parts_dir.exists():
        for part in sorted(parts_dir.glob("part-*.parquet")):
            mtime = part.stat().st_mtime
            for row in pq.read_table(part, schema=schema).to_pylist():
                held = newest.get(row[key])
                if held is None or held[0] <= mtime:
                    newest[row[key]] = (mtime, row)
    if wanted is None:
        return [row for _, row in sorted(newest.values(), key=lambda item: item[1][key])]
    return [newest[k][1] for k in wanted if k in newest]


def finished_keys(parts_dir: Path, key: str) -> set[str]:
    done: set[str] = set()
    if parts_dir.exists():
        for part in parts_dir.glob("part-*.parquet"):
            done.update(pq.read_table(part, columns=[key]).column(key).to_pylist())
    return done
