"""The SFIBench leaderboard: model x {All, 5, ..., 81} (Tables 2/A1), log10 variance across scales (Table A2).

Reads RUNDIR/scores_summary.parquet of each run. A metric that was not computed (missing weights, no
clips) is an empty cell with its reason in a footnote, never a 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from sfi_core.constants import FRAME_COUNTS

ALL_GROUP = "All"
VARIANCE_ROW = "log10 var"
ARROWS = {"higher": "↑", "lower": "↓"}
RANK_MARKS = ("**{}**", "<u>{}</u>", "*{}*")  # best, second, third in the Markdown


@dataclass
class MetricColumn:
    name: str
    label: str  # e.g. "LPIPS↓"
    direction: str  # higher | lower
    version: str
    category: str = ""

    @property
    def header(self) -> str:
        return f"{self.label} ({self.version})"


@dataclass
class Leaderboard:
    models: list[str]
    groups: list[str]
    metrics: list[MetricColumn]
    values: dict[tuple[str, str, str], float | None] = field(default_factory=dict)  # (model, group, metric)
    samples: dict[tuple[str, str, str], int] = field(default_factory=dict)
    clips_in_test: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, group)
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, metric) -> why not computed

    def value(self, model: str, group: str, metric: str) -> float | None:
        return self.values.get((model, group, metric))

    def log10_variance(self, model: str, metric: str) -> float | None:
        """log10 of the population variance of the per-scale values (Table A2); None below two scales."""
        scale_values = [self.value(model, g, metric) for g in self.groups if g != ALL_GROUP]
        finite = [v for v in scale_values if v is not None and math.isfinite(v)]
        if len(finite) < 2:
            return None
        mean = sum(finite) / len(finite)
        variance = sum((v - mean) ** 2 for v in finite) / len(finite)
        return math.log10(variance) if variance > 0 else -math.inf


def _group_order(groups: set[str]) -> list[str]:
    scales = sorted((g for g in groups if g != ALL_GROUP), key=int)
    return [ALL_GROUP, *scales]


def read_run_summary(run_dir: Path) -> list[dict]:
    import pyarrow.parquet as pq

    path = Path(run_dir) / "scores_summary.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: score the run first (`sfi-bench score {run_dir}`).")
    return pq.read_table(path).to_pylist()


def build_leaderboard(rows: list[dict]) -> Leaderboard:
    """Rows of scores_summary.parquet (several runs) -> one table; metric order as first seen."""
    models: list[str] = []
    metrics: dict[str, MetricColumn] = {}
    groups: set[str] = {ALL_GROUP, *(str(n) for n in FRAME_COUNTS)}
    board = Leaderboard([], [], [])
    for row in rows:
        model, metric, group = row["model"], row["metric"], str(row["group"])
        if model not in models:
            models.append(model)
        if metric not in metrics:
            direction = row.get("direction") or "higher"
            metrics[metric] = MetricColumn(
                metric,
                row.get("label") or f"{metric}{ARROWS.get(direction, '')}",
                direction,
                str(row.get("version") or "1"),
                row.get("category") or "",
            )
        groups.add(group)
        value = row.get("value")
        board.values[(model, group, metric)] = None if value is None else float(value)
        board.samples[(model, group, metric)] = int(row.get("num_samples") or 0)
        if row.get("clips_in_test") is not None:
            board.clips_in_test[(model, group)] = int(row["clips_in_test"])
        if value is None and row.get("reason") and group == ALL_GROUP:
            board.reasons[(model, metric)] = str(row["reason"])
    board.models, board.groups, board.metrics = models, _group_order(groups), list(metrics.values())
    return board


def load_leaderboard(run_dirs: list[Path]) -> Leaderboard:
    rows: list[dict] = []
    seen: set[str] = set()
    for run_dir in run_dirs:
        run_rows = read_run_summary(run_dir)
        names = {r["model"] for r in run_rows}
        clash = names & seen
        if clash:
            raise ValueError(f"model {sorted(clash)} appears in two run directories; each model once, please")
        seen |= names
        rows += run_rows
    return build_leaderboard(rows)


def format_value(value: float | None) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


# ---------------------------------------------------------------- CSV


def write_csv(board: Leaderboard, path: Path) -> None:
    """model, frames, clips, one column per metric ("LPIPS↓ (v1)"); then one "log10 var" row per model."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["model", "frames", "clips_scored", "clips_in_test", *[m.header for m in board.metrics]]
        )
        for model in board.models:
            for group in board.groups:
                scored = max((board.samples.get((model, group, m.name), 0) for m in board.metrics), default=0)
                writer.writerow(
                    [
                        model,
                        group,
                        scored,
                        board.clips_in_test.get((model, group), ""),
                        *[format_value(board.value(model, group, m.name)) for m in board.metrics],
                    ]
                )
        for model in board.models:
            writer.writerow(
                [
                    model,
                    VARIANCE_ROW,
                    "",
                    "",
                    *[format_value(board.log10_variance(model, m.name)) for m in board.metrics],
                ]
            )


# ---------------------------------------------------------------- Markdown


def rank_marks(board: Leaderboard, group: str, metric: MetricColumn) -> dict[str, int]:
    """model -> 0 (best), 1, 2 in the metric's direction; ties share a rank, and all-equal marks nothing."""
    scored = {m: board.value(m, group, metric.name) for m in board.models}
    scored = {m: v for m, v in scored.items() if v is not None and math.isfinite(v)}
    distinct = sorted(set(scored.values()), reverse=metric.direction == "higher")
    if len(distinct) < 2:
        return {}
    rank_of = {value: rank for rank, value in enumerate(distinct[: len(RANK_MARKS)])}
    return {model: rank_of[value] for model, value in scored.items() if value in rank_of}


def _footnotes(board: Leaderboard) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """(model, metric) -> footnote number; one footnote per distinct reason."""
    numbers: dict[tuple[str, str], int] = {}
    by_reason: dict[str, int] = {}
    for key, reason in board.reasons.items():
        numbers[key] = by_reason.setdefault(reason, len(by_reason) + 1)
    return numbers, by_reason


def markdown(board: Leaderboard) -> str:
    numbers, notes = _footnotes(board)
    headers = ["Frames", "Model", *[m.label for m in board.metrics]]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * len(board.metrics)) + "|",
    ]
    for group in board.groups:
        marks = {m.name: rank_marks(board, group, m) for m in board.metrics}
        for model in board.models:
            cells = []
            for metric in board.metrics:
                value = board.value(model, group, metric.name)
                if value is None:
                    note = numbers.get((model, metric.name))
                    cells.append(f"–[^{note}]" if note else "–")
                    continue
                text = format_value(value)
                rank = marks[metric.name].get(model)
                cells.append(RANK_MARKS[rank].format(text) if rank is not None else text)
            lines.append(f"| {group} | {model} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Best **bold**, second <u>underlined</u>, third *italic* per frame count (ties share a mark).",
        "",
        "Metric versions:",
        "",
    ]
    lines += [f"- {m.label} `{m.name}`: {m.version}" for m in board.metrics]
    lines += [""]
    lines += ["Log10 variance of each metric across the frame counts (Table A2; lower = steadier):", ""]
    lines += [
        "| Model | " + " | ".join(m.label.rstrip("↑↓") for m in board.metrics) + " |",
        "|---|" + "|".join(["---:"] * len(board.metrics)) + "|",
    ]
    for model in board.models:
        lines.append(
            f"| {model} | "
            + " | ".join(format_value(board.log10_variance(model, m.name)) or "–" for m in board.metrics)
            + " |"
        )
    coverage = [
        f"{model}: {board.clips_in_test.get((model, ALL_GROUP))} test clips"
        for model in board.models
        if board.clips_in_test.get((model, ALL_GROUP)) is not None
    ]
    if coverage:
        lines += ["", "Clips in the test set per run: " + "; ".join(coverage) + "."]
    if notes:
        lines += ["", "Not computed (empty cells, never 0):", ""]
        lines += [f"[^{number}]: {' '.join(reason.split())}" for reason, number in notes.items()]
    return "\n".join(lines) + "\n"


def write_markdown(board: Leaderboard, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(board), encoding="utf-8")


# ---------------------------------------------------------------- plots


def write_plots(board: Leaderboard, folder: Path) -> list[Path]:
    """One PNG per metric: value against N (log2 axis), one line per model; gaps where not computed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    scales = [g for g in board.groups if g != ALL_GROUP]
    written = []
    for metric in board.metrics:
        figure, axes = plt.subplots(figsize=(5.5, 3.6))
        plotted = 0
        for model in board.models:
            points = [(int(g), board.value(model, g, metric.name)) for g in scales]
            points = [(n, v) for n, v in points if v is not None and math.isfinite(v)]
            if points:
                axes.plot([n for n, _ in points], [v for _, v in points], marker="o", label=model)
                plotted += 1
        axes.set_xscale("log", base=2)
        axes.set_xticks([int(g) for g in scales], labels=scales)
        axes.set_xlabel("frames N")
        axes.set_ylabel(metric.label)
        axes.set_title(metric.label)
        if plotted:
            axes.legend(fontsize="small")
        else:
            axes.text(0.5, 0.5, "not computed", ha="center", va="center", transform=axes.transAxes)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        path = folder / f"{metric.name}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
