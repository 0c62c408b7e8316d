"""Thresholds: a keep-range per score, explicit or from corpus quantiles, applied to every scored video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sfi_core.constants import STATUS_OK, STATUS_REJECTED
from sfi_data.config import RangeConfig, ThresholdConfig

# Below this many scored videos a 5 % quantile is one or two videos: the bounds reject the extremes of
# the corpus by construction, however good they are (on 9 real videos the best one was dropped).
MIN_QUANTILE_VIDEOS = 50


@dataclass
class Bounds:
    low: float | None
    high: float | None
    mode: str
    quantile_of: int = 0  # scored videos the quantiles were taken over (0: no quantile used)

    def verdict(self, label: str, code: str, value: float) -> tuple[str, str] | None:
        """(reason_code, reason) when `value` falls outside, else None; `code` is the score's code stem."""
        if self.low is not None and value < self.low:
            return f"{code}_low", f"{label} {value:.4g} < low threshold {self.low:.4g}"
        if self.high is not None and value > self.high:
            return f"{code}_high", f"{label} {value:.4g} > high threshold {self.high:.4g}"
        return None


def resolve_bounds(values: list[float], config: RangeConfig) -> Bounds:
    """Explicit bounds win; quantiles are taken over the scored corpus (linear interpolation)."""
    return bounds_of_finite(
        np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64), config
    )


def bounds_of_finite(arr: np.ndarray, config: RangeConfig) -> Bounds:
    """`resolve_bounds` over values already freed of nulls and non-finite numbers."""
    parts = []
    low, high = config.low, config.high
    quantile_of = 0
    if low is None and config.low_quantile is not None and arr.size:
        low = float(np.quantile(arr, config.low_quantile))
        parts.append(f"low=q{config.low_quantile:g}")
        quantile_of = arr.size
    elif low is not None:
        parts.append("low=explicit")
    if high is None and config.high_quantile is not None and arr.size:
        high = float(np.quantile(arr, config.high_quantile))
        parts.append(f"high=q{config.high_quantile:g}")
        quantile_of = arr.size
    elif high is not None:
        parts.append("high=explicit")
    return Bounds(low, high, ",".join(parts) or "open", quantile_of)


def small_corpus_warning(bounds: dict[str, Bounds]) -> str | None:
    """One line when a quantile bound was taken over fewer than MIN_QUANTILE_VIDEOS videos, else None."""
    small = {name: b.quantile_of for name, b in bounds.items() if 0 < b.quantile_of < MIN_QUANTILE_VIDEOS}
    if not small:
        return None
    flags = {"similarity": "--sim-low/--sim-high", "flow": "--flow-low/--flow-high"}
    return (
        f"{' and '.join(small)} bounds are quantiles of only {min(small.values())} scored videos "
        f"(< {MIN_QUANTILE_VIDEOS}): they reject the extremes of this corpus by construction; "
        f"give explicit bounds ({', '.join(flags.get(name, name) for name in small)})"
    )


def apply_thresholds(rows: list[dict], config: ThresholdConfig) -> dict[str, Bounds]:
    """Resolve both ranges over the ok rows, record them on every row, reject what falls outside."""
    ok = [r for r in rows if r["status"] == STATUS_OK]
    similarity = resolve_bounds([r["similarity"] for r in ok], config.similarity)
    flow = resolve_bounds([r["flow_score"] for r in ok], config.flow)
    mode = f"similarity[{similarity.mode}] flow[{flow.mode}]"
    bounds = {"similarity": similarity, "flow": flow}
    warning = small_corpus_warning(bounds)
    for row in rows:
        row.update(
            similarity_low=similarity.low,
            similarity_high=similarity.high,
            flow_low=flow.low,
            flow_high=flow.high,
            threshold_mode=mode,
            threshold_warning=warning,
        )
        if row["status"] != STATUS_OK:
            continue
        verdict = similarity.verdict("similarity", "similarity", row["similarity"]) or flow.verdict(
            "flow score", "flow", row["flow_score"]
        )
        if verdict:
            row.update(status=STATUS_REJECTED, stage="threshold", reason=verdict[1], reason_code=verdict[0])
    return bounds


# The verdicts in the order `apply_thresholds` tries them: the first that fires names the reason.
_RULES = (("similarity", "similarity", "similarity"), ("flow", "flow_score", "flow score"))


def _finite_ok(table: pa.Table, column: str, ok: np.ndarray) -> np.ndarray:
    values = table.column(column).filter(pa.array(ok)).to_numpy(zero_copy_only=False).astype(np.float64)
    return values[np.isfinite(values)]


def _constant(value, type_: pa.DataType, length: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, type_), length)


# The columns the bounds are resolved from: a narrow merge of these is enough (sfi_data.pipeline).
BOUNDS_COLUMNS = ("status", *(column for _, column, _ in _RULES))


def bounds_table(table: pa.Table, config: ThresholdConfig) -> dict[str, Bounds]:
    """The bounds `apply_thresholds` resolves, from the ok rows' scores (only BOUNDS_COLUMNS are read)."""
    ok = pc.fill_null(pc.equal(table.column("status"), STATUS_OK), False).to_numpy(zero_copy_only=False)
    return {
        name: bounds_of_finite(_finite_ok(table, column, ok), getattr(config, name))
        for name, column, _ in _RULES
    }


def apply_thresholds_table(table: pa.Table, config: ThresholdConfig) -> tuple[pa.Table, dict[str, Bounds]]:
    """`apply_thresholds` on a table's columns: the same bounds, verdicts and values; a new table."""
    bounds = bounds_table(table, config)
    return apply_bounds_table(table, bounds), bounds


def apply_bounds_table(table: pa.Table, bounds: dict[str, Bounds]) -> pa.Table:
    """Reject the ok rows outside `bounds` and record the bounds on every row; rows are independent,
    so a manifest may be thresholded batch by batch with the bounds of the whole."""
    table = table.combine_chunks()
    length = table.num_rows
    ok = pc.fill_null(pc.equal(table.column("status"), STATUS_OK), False).to_numpy(zero_copy_only=False)
    similarity, flow = bounds["similarity"], bounds["flow"]
    mode = f"similarity[{similarity.mode}] flow[{flow.mode}]"
    warning = small_corpus_warning(bounds)
    verdicts: dict[int, tuple[str, str]] = {}
    open_rows = ok.copy()
    for name, column, label in _RULES:
        b = bounds[name]
        for bound, compare in ((b.low, pc.less), (b.high, pc.greater)):
            if bound is None:
                continue
            fired = pc.fill_null(compare(table.column(column), bound), False).to_numpy(zero_copy_only=False)
            fired &= open_rows
            open_rows &= ~fired
            indices = np.flatnonzero(fired)
            for index, value in zip(indices, table.column(column).take(indices).to_pylist(), strict=True):
                verdicts[int(index)] = b.verdict(label, name, value)
    schema = table.schema
    columns = {
        "similarity_low": similarity.low,
        "similarity_high": similarity.high,
        "flow_low": flow.low,
        "flow_high": flow.high,
        "threshold_mode": mode,
        "threshold_warning": warning,
    }
    for name, value in columns.items():
        table = table.set_column(
            schema.get_field_index(name),
            schema.field(name),
            _constant(value, schema.field(name).type, length),
        )
    if verdicts:
        mask = np.zeros(length, bool)
        mask[list(verdicts)] = True
        order = sorted(verdicts)
        replacements = {
            "status": [STATUS_REJECTED] * len(order),
            "stage": ["threshold"] * len(order),
            "reason": [verdicts[i][1] for i in order],
            "reason_code": [verdicts[i][0] for i in order],
        }
        for name, values in replacements.items():
            index = schema.get_field_index(name)
            column = pc.replace_with_mask(
                table.column(name).combine_chunks(), pa.array(mask), pa.array(values, pa.string())
            )
            table = table.set_column(index, schema.field(name), column)
    return table
