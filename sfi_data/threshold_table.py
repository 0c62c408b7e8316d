"""Thresholds over a merged Arrow manifest: `apply_thresholds` on only the columns it reads and writes."""

from __future__ import annotations

import pyarrow as pa

from sfi_data.config import ThresholdConfig
from sfi_data.stages.thresholds import Bounds, apply_thresholds

# What apply_thresholds reads, and may change on a rejected row; it adds the bounds columns itself.
THRESHOLD_INPUTS = ("status", "stage", "reason", "reason_code", "similarity", "flow_score")


def threshold_table(
    table: pa.Table, config: ThresholdConfig
) -> tuple[pa.Table, dict[str, Bounds], list[dict]]:
    """The table with thresholds applied as `apply_thresholds` applies them to full rows, and the bounds.

    Only the few columns thresholds touch become dicts (not the ~36 of a manifest row); the slim rows
    are returned too, as they carry what the summary counts (status, reason_code).
    """
    slim = table.select(list(THRESHOLD_INPUTS)).to_pylist()
    bounds = apply_thresholds(slim, config)
    for name in slim[0] if slim else ():
        field = table.schema.field(name)
        column = pa.array([row[name] for row in slim], field.type)
        table = table.set_column(table.schema.get_field_index(name), field, column)
    return table, bounds, slim
