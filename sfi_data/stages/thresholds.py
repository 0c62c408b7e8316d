"""Thresholds: a keep-range per score, explicit or from corpus quantiles, applied to every scored video."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sfi_core.schemas import STATUS_OK, STATUS_REJECTED
from sfi_data.config import RangeConfig, ThresholdConfig


@dataclass
class Bounds:
    low: float | None
    high: float | None
    mode: str

    def reason(self, label: str, value: float) -> str | None:
        if self.low is not None and value < self.low:
            return f"{label} {value:.4g} < low threshold {self.low:.4g}"
        if self.high is not None and value > self.high:
            return f"{label} {value:.4g} > high threshold {self.high:.4g}"
        return None


def resolve_bounds(values: list[float], config: RangeConfig) -> Bounds:
    """Explicit bounds win; quantiles are taken over the scored corpus (linear interpolation)."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    parts = []
    low, high = config.low, config.high
    if low is None and config.low_quantile is not None and arr.size:
        low = float(np.quantile(arr, config.low_quantile))
        parts.append(f"low=q{config.low_quantile:g}")
    elif low is not None:
        parts.append("low=explicit")
    if high is None and config.high_quantile is not None and arr.size:
        high = float(np.quantile(arr, config.high_quantile))
        parts.append(f"high=q{config.high_quantile:g}")
    elif high is not None:
        parts.append("high=explicit")
    return Bounds(low, high, ",".join(parts) or "open")


def apply_thresholds(rows: list[dict], config: ThresholdConfig) -> dict[str, Bounds]:
    """Resolve both ranges over the ok rows, record them on every row, reject what falls outside."""
    ok = [r for r in rows if r["status"] == STATUS_OK]
    similarity = resolve_bounds([r["similarity"] for r in ok], config.similarity)
    flow = resolve_bounds([r["flow_score"] for r in ok], config.flow)
    mode = f"similarity[{similarity.mode}] flow[{flow.mode}]"
    for row in rows:
        row.update(
            similarity_low=similarity.low,
            similarity_high=similarity.high,
            flow_low=flow.low,
            flow_high=flow.high,
            threshold_mode=mode,
        )
        if row["status"] != STATUS_OK:
            continue
        reason = similarity.reason("similarity", row["similarity"]) or flow.reason(
            "flow score", row["flow_score"]
        )
        if reason:
            row.update(status=STATUS_REJECTED, stage="threshold", reason=reason)
    return {"similarity": similarity, "flow": flow}
