"""The driver's Arrow path (merge, thresholds, counts) gives what the row-dict path gives, to the byte."""

from __future__ import annotations

import copy
import math
import os
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfi_core.driver import StageSummary, count, count_table
from sfi_core.manifest import parts_newest_first, write_rows, write_table
from sfi_core.manifest_table import PartsMerge, finished_keys, merge_parts, merge_parts_table
from sfi_core.schemas import CLIPS, VIDEOS, to_table
from sfi_data.config import RangeConfig, ThresholdConfig
from sfi_data.stages.thresholds import (
    BOUNDS_COLUMNS,
    apply_bounds_table,
    apply_thresholds,
    apply_thresholds_table,
    bounds_table,
)


def reference_merge(parts_dir, schema, key, wanted=None) -> list[dict]:
    """The merge's rule as plain dicts, the oracle of the Arrow merge: the newest part holding a key
    gives all its rows for it, keys in `wanted` order (else sorted), rows in the order written."""
    held: dict[str, list[dict]] = {}
    for part in parts_newest_first(parts_dir):
        fresh: dict[str, list[dict]] = {}
        for row in pq.read_table(part, schema=schema).to_pylist():
            if row[key] not in held:
                fresh.setdefault(row[key], []).append(row)
        held.update(fresh)
    order = sorted(held) if wanted is None else [k for k in wanted if k in held]
    return [row for k in order for row in held[k]]


def _video_row(index: int, rng: random.Random, attempt: int) -> dict:
    row = {name: None for name in VIDEOS.names}
    row |= {"video_id": f"v{index:04d}", "source": f"/data/v{index:04d}.mp4", "path": f"v{index:04d}.mp4"}
    kind = rng.random()
    if attempt == 0 and index % 7 == 0:  # failed the first time, retried later
        return row | {
            "status": "error",
            "stage": "probe",
            "reason": "ffprobe failed",
            "reason_code": "probe_failed",
        }
    if kind < 0.1:
        return row | {
            "status": "rejected",
            "stage": "meta",
            "reason": "too short",
            "reason_code": "too_short",
        }
    if kind < 0.15:
        return row | {"status": "error", "stage": "score", "reason": "decode", "reason_code": None}
    # An ok row always has both scores; a NaN one passes every bound (comparisons with NaN are false).
    similarity = float("nan") if kind < 0.17 else rng.uniform(0.2, 1.0)
    if index % 11 == 0:  # on the explicit bounds: kept, as `value < low` and `value > high` say
        return row | {"status": "ok", "stage": "score", "similarity": 0.4, "flow_score": 8.0}
    return row | {
        "status": "ok",
        "stage": "score",
        "similarity": similarity,
        "flow_score": rng.uniform(0.0, 9.0),
    }


def _write_parts(parts_dir, shard_size: int = 8) -> list[str]:
    """Parts as the filter writes them: shards of 8 inputs, errors retried into newer parts."""
    rng = random.Random(16)
    keys = [f"v{index:04d}" for index in range(240)]
    parts_dir.mkdir(parents=True)
    stamp = 10**18
    for attempt in (0, 1):
        indices = range(240) if attempt == 0 else [i for i in range(240) if i % 7 == 0]
        indices = list(indices)
        for start in range(0, len(indices), shard_size):
            rows = [_video_row(i, rng, attempt) for i in indices[start : start + shard_size]]
            part = parts_dir / f"part-{attempt}-{start:04d}.parquet"
            write_rows(rows, VIDEOS, part)
            stamp += 1000
            os.utime(part, ns=(stamp, stamp))
    return keys


def _comparable(rows: list[dict]) -> list[dict]:
    """Rows with NaN spelled out: NaN equals nothing, itself included."""
    nan = "NaN"
    return [{k: nan if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows]


@pytest.mark.parametrize(
    "config",
    [
        ThresholdConfig(),
        ThresholdConfig(similarity=RangeConfig(low=0.4, high_quantile=0.9), flow=RangeConfig(high=8.0)),
        ThresholdConfig(similarity=RangeConfig(), flow=RangeConfig()),
    ],
)
def test_arrow_merge_thresholds_and_counts_equal_the_row_dicts(tmp_path, config):
    keys = _write_parts(tmp_path / "parts")
    wanted = list(reversed(keys))
    rows = reference_merge(tmp_path / "parts", VIDEOS, "video_id", wanted)
    table = merge_parts_table(tmp_path / "parts", VIDEOS, "video_id", pa.array(wanted, pa.string()))
    assert table.schema == VIDEOS
    assert _comparable(table.to_pylist()) == _comparable(rows)
    assert any(row["status"] == "error" for row in rows) and len(rows) == len(keys)
    sorted_rows = reference_merge(tmp_path / "parts", VIDEOS, "video_id")
    assert _comparable(merge_parts_table(tmp_path / "parts", VIDEOS, "video_id").to_pylist()) == _comparable(
        sorted_rows
    )

    bounds = apply_thresholds(rows, config)
    thresholded, table_bounds = apply_thresholds_table(table, config)
    assert table_bounds == bounds
    assert sum(row["stage"] == "threshold" for row in rows) > 0 or config.similarity == RangeConfig()
    write_rows(rows, VIDEOS, tmp_path / "dicts.parquet")
    write_table(thresholded, tmp_path / "arrow.parquet")
    assert (tmp_path / "arrow.parquet").read_bytes() == (tmp_path / "dicts.parquet").read_bytes()

    by_dicts, by_table = count(StageSummary("filter"), rows), count_table(StageSummary("filter"), thresholded)
    assert list(by_table.statuses.items()) == list(by_dicts.statuses.items())
    assert list(by_table.reasons.items()) == list(by_dicts.reasons.items())

    # As run_filter writes it: bounds from a merge of the columns they use, then batches thresholded.
    merge = PartsMerge(tmp_path / "parts", VIDEOS, "video_id", pa.array(wanted, pa.string()), BOUNDS_COLUMNS)
    assert merge.kept.column_names == ["video_id", *BOUNDS_COLUMNS]
    assert bounds_table(merge.kept, config) == bounds
    by_batches = StageSummary("filter")
    merge.write(
        tmp_path / "streamed.parquet",
        transform=lambda batch: apply_bounds_table(batch, bounds),
        each=lambda batch: count_table(by_batches, batch),
        batch_rows=50,
    )
    streamed = pq.read_table(tmp_path / "streamed.parquet")
    assert streamed.schema == VIDEOS and _comparable(streamed.to_pylist()) == _comparable(rows)
    assert list(by_batches.statuses.items()) == list(by_dicts.statuses.items())
    assert list(by_batches.reasons.items()) == list(by_dicts.reasons.items())


def test_arrow_merge_keeps_several_rows_per_key_in_written_order(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    base = {name: None for name in CLIPS.names}
    older = [
        base | {"video_id": "a", "clip_id": f"a_{n:02d}", "num_frames": n, "status": "error"} for n in (5, 9)
    ]
    newer = [
        base | {"video_id": "a", "clip_id": f"a_{n:02d}", "num_frames": n, "status": "ok"} for n in (9, 5, 13)
    ]
    other = [base | {"video_id": "b", "clip_id": "b_05", "num_frames": 5, "status": "ok"}]
    for stamp, (name, rows) in enumerate([("x", older), ("y", other), ("z", newer)]):
        pq.write_table(to_table(copy.deepcopy(rows), CLIPS), parts / f"part-{name}.parquet")
        os.utime(parts / f"part-{name}.parquet", ns=(10**18 + stamp * 1000,) * 2)
    table = merge_parts_table(parts, CLIPS, "video_id", pa.array(["b", "a"], pa.string()))
    assert table.to_pylist() == reference_merge(parts, CLIPS, "video_id", ["b", "a"])
    assert table.column("clip_id").to_pylist() == ["b_05", "a_09", "a_05", "a_13"]
    assert merge_parts_table(parts, CLIPS, "video_id").to_pylist() == reference_merge(
        parts, CLIPS, "video_id"
    )


@pytest.mark.parametrize("batch_rows", [1, 7, 64, 4096])
def test_streamed_merge_writes_the_merged_rows_batch_by_batch(tmp_path, batch_rows):
    """PartsMerge.write gives merge_parts' rows (newest part wins, retried errors replaced, `wanted`
    order, a key named twice twice), whatever the batch size, and shows `each` every row once."""
    keys = _write_parts(tmp_path / "parts")
    wanted = list(reversed(keys)) + keys[:3] + ["absent"]
    rows = reference_merge(tmp_path / "parts", VIDEOS, "video_id", wanted)
    seen: list[int] = []
    merge = PartsMerge(tmp_path / "parts", VIDEOS, "video_id", pa.array(wanted, pa.string()))
    merge.write(
        tmp_path / "out.parquet", each=lambda batch: seen.append(batch.num_rows), batch_rows=batch_rows
    )
    written = len(merge)
    assert written == len(rows) == sum(seen) == len(keys) + 3
    assert max(seen) <= batch_rows
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema == VIDEOS
    assert _comparable(table.to_pylist()) == _comparable(rows)
    PartsMerge(tmp_path / "parts", VIDEOS, "video_id").write(
        tmp_path / "sorted.parquet", batch_rows=batch_rows
    )
    assert _comparable(pq.read_table(tmp_path / "sorted.parquet").to_pylist()) == _comparable(
        reference_merge(tmp_path / "parts", VIDEOS, "video_id")
    )


def test_streamed_merge_of_no_parts_writes_an_empty_manifest(tmp_path):
    merge = PartsMerge(tmp_path / "none", CLIPS, "video_id")
    merge.write(tmp_path / "clips.parquet")
    assert len(merge) == 0 and merge.kept.num_rows == 0
    empty = pq.read_table(tmp_path / "clips.parquet")
    assert empty.num_rows == 0 and empty.schema == CLIPS


def test_the_row_merge_and_the_finished_keys_follow_the_rule(tmp_path):
    """merge_parts (rows) and finished_keys, the driver's skip list, against the dict oracle."""
    rng = random.Random(3)
    parts = tmp_path / "parts"
    for attempt in range(3):
        rows = [_video_row(i, rng, attempt) for i in range(attempt * 5, 60)]
        write_rows(rows[: len(rows) // 2], VIDEOS, parts / f"part-{attempt + 1:06d}-{attempt:016x}.parquet")
        write_rows(
            rows[len(rows) // 2 :], VIDEOS, parts / f"part-{attempt + 1:06d}-{attempt + 9:016x}.parquet"
        )
    expected = reference_merge(parts, VIDEOS, "video_id")
    assert merge_parts(parts, VIDEOS, "video_id") == expected
    wanted = [f"v{i:04d}" for i in (7, 3, 55, 99)]
    assert merge_parts(parts, VIDEOS, "video_id", wanted) == reference_merge(
        parts, VIDEOS, "video_id", wanted
    )
    errors = {r["video_id"] for r in expected if r["status"] == "error"}
    assert errors and finished_keys(parts, "video_id") == {r["video_id"] for r in expected} - errors
