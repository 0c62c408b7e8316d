"""The driver's settings fingerprint and error retry, on a toy stage (no video, milliseconds)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from sfi_core.driver import (
    SETTINGS_FILE,
    SettingsChangedError,
    changed_settings,
    count,
    recorded_settings,
    run_stage,
)
from sfi_core.manifest_table import finished_keys, merge_parts
from sfi_core.stage import Chain, Stage
from sfi_data.config import RunConfig

SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("value", pa.int64()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("reason_code", pa.string()),
    ]
)


class Double(Stage):
    """value * factor; keys listed in `failing` come out as error rows."""

    name = "double"
    key = "key"

    def __init__(self, factor: int = 2, failing: frozenset[str] = frozenset()) -> None:
        self.factor = factor
        self.failing = failing
        self.calls: list[str] = []

    def settings(self) -> dict:
        return {"factor": self.factor, "nested": {"scales": (5, 9)}}

    def process_row(self, row: dict) -> list[dict]:
        self.calls.append(row["key"])
        if row["key"] in self.failing:
            return [row | {"status": "error", "reason": "boom 17", "reason_code": "decode_failed"}]
        return [row | {"value": row["value"] * self.factor, "status": "ok"}]


ROWS = [{"key": f"k{i}", "value": i} for i in range(5)]
LOCAL = RunConfig(executor="local", shard_size=2)


def merged(out):
    return merge_parts(out / "work" / "double", SCHEMA, "key", [r["key"] for r in ROWS])


def test_settings_are_recorded_next_to_the_parts_and_read_back(tmp_path):
    run_stage(Double(), ROWS, tmp_path, SCHEMA, LOCAL)
    on_disk = json.loads((tmp_path / "work" / "double" / SETTINGS_FILE).read_text())
    assert on_disk == {"factor": 2, "nested": {"scales": [5, 9]}}
    assert recorded_settings(tmp_path, "double") == on_disk
    assert recorded_settings(tmp_path, "never-ran") is None


def test_a_rerun_with_other_settings_stops_before_any_work_naming_the_keys(tmp_path):
    run_stage(Double(), ROWS[:3], tmp_path, SCHEMA, LOCAL)
    stage = Double(factor=3)
    with pytest.raises(SettingsChangedError) as caught:
        run_stage(stage, ROWS, tmp_path, SCHEMA, LOCAL)
    message = str(caught.value)
    assert "\n" not in message
    assert "factor: 2 -> 3" in message and "--overwrite" in message and "another --out" in message
    assert "nested" not in message  # unchanged keys are not named
    assert stage.calls == []  # refused before any work
    assert [r["value"] for r in merged(tmp_path)] == [0, 2, 4]


def test_settings_of_a_run_that_finished_no_shard_do_not_bind(tmp_path):
    run_stage(Double(), [], tmp_path, SCHEMA, LOCAL)  # recorded, but no part file was written
    run_stage(Double(factor=3), ROWS, tmp_path, SCHEMA, LOCAL)
    assert recorded_settings(tmp_path, "double")["factor"] == 3


def test_overwrite_redoes_the_work_with_the_new_settings(tmp_path):
    run_stage(Double(), ROWS, tmp_path, SCHEMA, LOCAL)
    redo = run_stage(Double(factor=3), ROWS, tmp_path, SCHEMA, RunConfig(executor="local", overwrite=True))
    assert redo.skipped == 0 and redo.processed == 5
    assert [r["value"] for r in merged(tmp_path)] == [0, 3, 6, 9, 12]
    assert recorded_settings(tmp_path, "double")["factor"] == 3


def test_the_same_settings_resume_and_keep_ok_rows(tmp_path):
    run_stage(Double(), ROWS[:3], tmp_path, SCHEMA, LOCAL)
    stage = Double()
    summary = run_stage(stage, ROWS, tmp_path, SCHEMA, LOCAL)
    assert (summary.skipped, summary.processed, summary.retried) == (3, 2, 0)
    assert stage.calls == ["k3", "k4"]


def test_error_rows_are_retried_and_superseded(tmp_path):
    first = Double(failing=frozenset({"k1", "k4"}))
    count(summary := run_stage(first, ROWS, tmp_path, SCHEMA, LOCAL), merged(tmp_path))
    assert summary.reasons == {"error: decode_failed": 2}
    assert finished_keys(tmp_path / "work" / "double", "key") == {"k0", "k2", "k3"}
    second = Double()  # the same settings; the cause of the errors went away
    again = run_stage(second, ROWS, tmp_path, SCHEMA, LOCAL)
    assert sorted(second.calls) == ["k1", "k4"]
    assert (again.skipped, again.processed, again.retried) == (3, 2, 2)
    rows = merged(tmp_path)
    assert [r["key"] for r in rows] == [r["key"] for r in ROWS]  # one row per key, input order
    assert all(r["status"] == "ok" for r in rows)
    third = Double()
    assert run_stage(third, ROWS, tmp_path, SCHEMA, LOCAL).processed == 0 and third.calls == []


def test_changed_settings_lists_every_differing_dotted_key():
    old = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": True}
    new = {"a": 1, "b": {"c": (1, 3), "d": "x"}, "added": None}
    assert changed_settings(old, new) == [
        "added: (absent) -> null",
        "b.c: [1, 2] -> [1, 3]",
        "gone: true -> (absent)",
    ]


def test_a_chain_records_each_stage_under_its_name():
    class Other(Double):
        name = "other"

        def settings(self) -> dict:
            return {"x": 1}

    assert Chain([Double(), Other()]).settings() == {
        "double": {"factor": 2, "nested": {"scales": (5, 9)}},
        "other": {"x": 1},
    }
