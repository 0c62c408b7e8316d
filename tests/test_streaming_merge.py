"""merge_parts_table gives merge_parts' rows (newest part per key, input order) as one Arrow table."""

from __future__ import annotations

import os

import pyarrow as pa

from sfi_core.manifest import merge_parts, write_rows
from sfi_core.manifest_table import merge_parts_table

SCHEMA = pa.schema([("video_id", pa.string()), ("clip", pa.int64()), ("status", pa.string())])


def write_part(parts, name: str, rows: list[tuple], mtime_s: int) -> None:
    path = parts / f"part-{name}.parquet"
    write_rows([{"video_id": v, "clip": c, "status": s} for v, c, s in rows], SCHEMA, path)
    os.utime(path, (mtime_s, mtime_s))


def test_merge_parts_table_equals_merge_parts(tmp_path):
    parts = tmp_path / "parts"
    # Several rows per key (as the cut writes), a key redone in a newer part (an error retried).
    write_part(parts, "a", [("v2", 5, "ok"), ("v2", 9, "error"), ("v1", 5, "ok"), ("v1", 9, "ok")], 1_000)
    write_part(parts, "b", [("v3", 9, "ok"), ("v3", 5, "ok"), ("v2", 5, "ok"), ("v2", 9, "ok")], 2_000)
    write_part(parts, "c", [("v4", 5, "error")], 1_500)
    for wanted in (None, ["v4", "v2", "v1", "v9", "v3"], ["v3"]):
        expected = merge_parts(parts, SCHEMA, "video_id", wanted)
        table = merge_parts_table(parts, SCHEMA, "video_id", wanted)
        assert table.schema == SCHEMA
        assert table.to_pylist() == expected
    assert [r["status"] for r in merge_parts_table(parts, SCHEMA, "video_id", ["v2"]).to_pylist()] == [
        "ok",
        "ok",
    ]
    assert merge_parts_table(tmp_path / "none", SCHEMA, "video_id", ["v1"]).num_rows == 0


def test_threshold_table_equals_apply_thresholds_on_full_rows():
    from sfi_core.schemas import VIDEOS, empty_row, to_table
    from sfi_data.config import RangeConfig, ThresholdConfig
    from sfi_data.stages.thresholds import apply_thresholds
    from sfi_data.threshold_table import threshold_table

    rows = []
    for i in range(12):
        status = "error" if i == 3 else "rejected" if i == 7 else "ok"
        row = empty_row(VIDEOS) | {"video_id": f"v{i}", "status": status, "fps": 24.0, "num_frames": 100}
        if status == "ok":
            row |= {"similarity": 0.5 + i / 40, "flow_score": float(i * 3 % 11), "stage": "score"}
        else:
            row |= {"reason": "no", "reason_code": "probe_failed" if i == 3 else "too_few_frames"}
        rows.append(row)
    config = ThresholdConfig(similarity=RangeConfig(low_quantile=0.2), flow=RangeConfig(high=6.5))
    table, bounds, slim = threshold_table(to_table(rows, VIDEOS), config)
    expected_bounds = apply_thresholds(rows, config)
    assert table.to_pylist() == to_table(rows, VIDEOS).to_pylist()
    assert bounds == expected_bounds
    assert [r["status"] for r in slim] == [r["status"] for r in rows]
    assert {r["reason_code"] for r in rows if r["status"] == "rejected"} >= {"similarity_low", "flow_high"}
