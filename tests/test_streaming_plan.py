"""Planning from Arrow: discover_table and plan_table_shards give what discover and plan_shards give."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfi_core.executors.base import plan_shards
from sfi_core.manifest import write_rows
from sfi_core.shard_plan import plan_table_shards
from sfi_data import discover_table as discover_table_module
from sfi_data.discover import discover
from sfi_data.discover_table import INPUT_SCHEMA, discover_table

PARTS_SCHEMA = pa.schema([("video_id", pa.string()), ("status", pa.string())])


def corpus(tmp_path):
    """Folders, a glob, a text list (comments, relative and repeated entries), a Parquet list, a missing file."""
    folder = tmp_path / "videos"
    (folder / "nested").mkdir(parents=True)
    for name in ("b.mp4", "a.MKV", "nested/c.webm", "notes.txt"):
        (folder / name).write_bytes(b"x")
    (tmp_path / "lists").mkdir()
    text_list = tmp_path / "lists" / "inputs.txt"
    text_list.write_text(
        "# a comment\n../videos/a.MKV\n\n/elsewhere/z.mp4\n../videos/b.mp4\n", encoding="utf-8"
    )
    parquet_list = tmp_path / "lists" / "more.parquet"
    pq.write_table(pa.table({"video_path": ["../videos/nested/c.webm", "/far/y.mov"]}), parquet_list)
    inputs = [str(folder), str(tmp_path / "videos" / "*.mp4"), str(text_list), str(tmp_path / "missing.mp4")]
    return inputs, [str(parquet_list)]


def test_discover_table_has_the_rows_of_discover(tmp_path, monkeypatch):
    inputs, list_files = corpus(tmp_path)
    root = tmp_path / "out"
    expected = discover(inputs, root, list_files)
    monkeypatch.setattr(discover_table_module, "CHUNK_ROWS", 2)  # duplicates across chunks too
    table = discover_table(inputs, root, list_files)
    assert table.schema == INPUT_SCHEMA
    assert table.to_pylist() == expected
    assert len(expected) == 6  # a, b, c, z, y, missing: the repeats dropped
    assert discover_table([], root).num_rows == 0


def test_discover_table_names_a_parquet_list_without_a_path_column(tmp_path):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"name": ["a.mp4"]}), bad)
    with pytest.raises(ValueError, match="needs a 'path' column"):
        discover_table([str(bad)], tmp_path)


def test_plan_table_shards_equals_plan_shards_and_resumes_the_same(tmp_path):
    rows = [{"video_id": f"v{i:03d}", "source": f"s{i}", "path": f"p{i}"} for i in range(23)]
    parts = tmp_path / "parts"
    # An earlier run finished v000-v003 and failed v004 (errors are retried).
    write_rows(
        [{"video_id": f"v{i:03d}", "status": "ok"} for i in range(4)], PARTS_SCHEMA, parts / "part-a.parquet"
    )
    write_rows([{"video_id": "v004", "status": "error"}], PARTS_SCHEMA, parts / "part-b.parquet")
    expected, skipped = plan_shards(rows, "video_id", parts, shard_size=5)
    plan = plan_table_shards(pa.Table.from_pylist(rows), "video_id", parts, shard_size=5)
    assert (plan.skipped, skipped) == (4, 4)
    assert len(plan) == len(expected) == 4 and bool(plan)
    assert [(s.rows, s.part_path) for s in plan] == [(s.rows, s.part_path) for s in expected]
    empty = plan_table_shards(pa.Table.from_pylist(rows[:4]), "video_id", parts, shard_size=5)
    assert len(empty) == 0 and not empty and list(empty) == []


@pytest.mark.parametrize(
    "name",
    ["clip.mp4", "a.tar.gz", ".hidden", "ends.", "no_suffix", "..", "x..mp4", "sp ace.MKV", "ünï.webm"],
)
def test_video_id_slug_follows_pathlib_stem(tmp_path, name):
    import re
    from pathlib import Path

    from sfi_data.discover import video_id_for

    stem = Path(tmp_path / "dir" / name).resolve().stem if name == ".." else Path(name).stem
    slug = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-")[:40] or "video"
    assert video_id_for(tmp_path / "dir" / name).rsplit("-", 1)[0] == slug
