"""The SFIBench leaderboard: model x {All, 5, ..., 81} (Tables 2/A1), log10 variance across scales (Table A2).

Reads RUNDIR/scores_summary.parquet and RUNDIR/scores.json of each run. A metric that was not computed
(missing weights, no clips) is an empty cell with its reason in a footnote, never a 0. Runs scored on
different test clips are refused unless `allow_mixed`, and the table then says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sfi_core.constants import FRAME_COUNTS

ALL_GROUP = "All"
VARIANCE_ROW = "log10 var"
ARROWS = {"higher": "↑", "lower": "↓"}
RANK_MARKS = ("**{}**", "<u>{}</u>", "*{}*")  # best, second, third in the Markdown
# Two values this close count as equal when deciding whether a column sits at its cap.
CAP_TOLERANCE = 1e-6


@dataclass
class MetricColumn:
    name: str  # registry name (endpoint_psnr)
    id: str  # the CSV header: the metric's registry name (psnr_all, temporal_flickering, ...)
    label: str  # e.g. "LPIPS↓"
    direction: str  # higher | lower
    version: str
    category: str = ""
    cap: float | None = None  # the best possible value, where one exists


@dataclass
class RunScores:
    """One scored run directory: its summary rows, scores.json and run.json."""

    run_dir: Path
    rows: list[dict]
    scores: dict
    info: dict

    @property
    def model(self) -> str:
        return str(self.info.get("model") or (self.rows[0]["model"] if self.rows else self.run_dir.name))

    @property
    def clip_set(self) -> str | None:
        return self.scores.get("clip_set")


@dataclass
class Leaderboard:
    models: list[str]
    groups: list[str]
    metrics: list[MetricColumn]
    values: dict[tuple[str, str, str], float | None] = field(default_factory=dict)  # (model, group, metric)
    clips_scored: dict[tuple[str, str, str], int] = field(default_factory=dict)
    stats: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # stderr, ci95, num_samples
    clips_in_test: dict[tuple[str, str], int] = field(default_factory=dict)  # (model, group)
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, metric) -> why not computed
    clip_sets: dict[str, str] = field(default_factory=dict)  # model -> test-set fingerprint
    mixed: bool = False  # runs on different clip sets, shown together on request

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

    def at_cap(self, metric: MetricColumn) -> bool:
        """Every computed value of the column is the metric's best possible value: it ranks nothing."""
        if metric.cap is None:
            return False
        cells = [self.value(m, g, metric.name) for m in self.models for g in self.groups]
        cells = [v for v in cells if v is not None]
        return bool(cells) and all(
            abs(v - metric.cap) <= CAP_TOLERANCE * max(1.0, abs(metric.cap)) for v in cells
        )


def _group_order(groups: set[str]) -> list[str]:
    scales = sorted((g for g in groups if g != ALL_GROUP), key=int)
    return [ALL_GROUP, *scales]


def read_run_scores(run_dir: Path) -> RunScores:
    import pyarrow.parquet as pq

    run_dir = Path(run_dir)
    path = run_dir / "scores_summary.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: score the run first (`sfi-bench score {run_dir}`).")
    scores_json, run_json = run_dir / "scores.json", run_dir / "run.json"
    scores = json.loads(scores_json.read_text(encoding="utf-8")) if scores_json.is_file() else {}
    info = json.loads(run_json.read_text(encoding="utf-8")) if run_json.is_file() else {}
    return RunScores(run_dir, pq.read_table(path).to_pylist(), scores, info)


def _column(row: dict) -> MetricColumn:
    direction = row.get("direction") or "higher"
    cap = row.get("cap")
    return MetricColumn(
        row["metric"],
        str(row.get("id") or row["metric"]),
        row.get("label") or f"{row['metric']}{ARROWS.get(direction, '')}",
        direction,
        str(row.get("version") or "1"),
        row.get("category") or "",
        None if cap is None or (isinstance(cap, float) and math.isnan(cap)) else float(cap),
    )


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
        metrics.setdefault(metric, _column(row))
        groups.add(group)
        key = (model, group, metric)
        value = row.get("value")
        board.values[key] = None if value is None else float(value)
        board.clips_scored[key] = int(row.get("clips_scored") or 0)
        board.stats[key] = {
            "num_samples": int(row.get("num_samples") or 0),
            "stderr": row.get("stderr"),
            "ci95": [row["ci95_low"], row["ci95_high"]] if row.get("ci95_low") is not None else None,
        }
        if row.get("clips_in_test") is not None:
            board.clips_in_test[(model, group)] = int(row["clips_in_test"])
        if value is None and row.get("reason") and group == ALL_GROUP:
            board.reasons[(model, metric)] = str(row["reason"])
    board.models, board.groups, board.metrics = models, _group_order(groups), list(metrics.values())
    return board


def check_clip_sets(runs: list[RunScores], allow_mixed: bool) -> bool:
    """True when the runs were scored on different test clips (allowed only with `allow_mixed`)."""
    sets = {run.clip_set for run in runs}
    if len(sets) <= 1:
        return False
    if not allow_mixed:
        described = "; ".join(
            f"{run.model}: {run.scores.get('clips_in_test', '?')} clips ({(run.clip_set or 'unknown')[:10]})"
            for run in runs
        )
        raise ValueError(
            f"the runs were scored on different test clips ({described}); score every model on the same "
            "test.parquet, or pass --allow-mixed to rank them anyway (the table is then marked)"
        )
    return True


def load_runs(run_dirs: list[Path]) -> list[RunScores]:
    runs = [read_run_scores(run_dir) for run_dir in run_dirs]
    seen: dict[str, Path] = {}
    for run in runs:
        if run.model in seen:
            raise ValueError(
                f"model {run.model!r} appears in {seen[run.model]} and {run.run_dir}; give each model once"
            )
        seen[run.model] = run.run_dir
    return runs


def leaderboard_from_runs(runs: list[RunScores], allow_mixed: bool = False) -> Leaderboard:
    mixed = check_clip_sets(runs, allow_mixed)
    board = build_leaderboard([row for run in runs for row in run.rows])
    board.mixed = mixed
    board.clip_sets = {run.model: run.clip_set or "" for run in runs}
    return board


def load_leaderboard(run_dirs: list[Path], allow_mixed: bool = False) -> Leaderboard:
    return leaderboard_from_runs(load_runs(run_dirs), allow_mixed)


def sort_models(board: Leaderboard, metric: str) -> None:
    """Order the rows by one metric's All value, best first (models without it last); id or name."""
    column = next((m for m in board.metrics if metric in (m.id, m.name)), None)
    if column is None:
        known = ", ".join(m.id for m in board.metrics)
        raise ValueError(f"--sort-by {metric}: no such metric in these runs (they have: {known})")
    sign = -1.0 if column.direction == "higher" else 1.0

    def key(model: str) -> tuple[bool, float]:
        value = board.value(model, ALL_GROUP, column.name)
        return (value is None, sign * value if value is not None else 0.0)

    board.models.sort(key=key)


def format_value(value: float | None) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


# ---------------------------------------------------------------- CSV


def clips_scored(board: Leaderboard, model: str, group: str) -> int:
    """Clips (not frames) behind the row: the most any metric of the row scored."""
    return max((board.clips_scored.get((model, group, m.name), 0) for m in board.metrics), default=0)


def write_csv(board: Leaderboard, path: Path) -> None:
    """model, frames, clips_scored, clips_in_test, clip_set, one column per metric id; then log10-var rows."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["model", "frames", "clips_scored", "clips_in_test", "clip_set", *[m.id for m in board.metrics]]
        )
        for model in board.models:
            for group in board.groups:
                writer.writerow(
                    [
                        model,
                        group,
                        clips_scored(board, model, group),
                        board.clips_in_test.get((model, group), ""),
                        board.clip_sets.get(model, "")[:12],
                        *[format_value(board.value(model, group, m.name)) for m in board.metrics],
                    ]
                )
        for model in board.models:
            variances = [format_value(board.log10_variance(model, m.name)) for m in board.metrics]
            writer.writerow([model, VARIANCE_ROW, "", "", board.clip_sets.get(model, "")[:12], *variances])


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


def footnotes(board: Leaderboard) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """(model, metric) -> footnote number; one footnote per distinct reason."""
    numbers: dict[tuple[str, str], int] = {}
    by_reason: dict[str, int] = {}
    for key, reason in board.reasons.items():
        numbers[key] = by_reason.setdefault(reason, len(by_reason) + 1)
    return numbers, by_reason


@dataclass
class Cell:
    value: float | None
    rank: int | None  # 0 best, 1 second, 2 third in the metric's direction; None unmarked
    note: int | None  # the footnote saying why the value is missing


def table_rows(board: Leaderboard) -> Iterator[tuple[str, str, list[Cell]]]:
    """(group, model, one cell per metric) in table order: what the Markdown and the HTML both show."""
    numbers, _ = footnotes(board)
    for group in board.groups:
        marks = {m.name: rank_marks(board, group, m) for m in board.metrics}
        for model in board.models:
            yield (
                group,
                model,
                [
                    Cell(
                        board.value(model, group, m.name),
                        marks[m.name].get(model),
                        numbers.get((model, m.name)),
                    )
                    for m in board.metrics
                ],
            )


def cap_notes(board: Leaderboard) -> list[str]:
    return [
        f"{m.label} (`{m.id}`): every model sits at the metric's cap ({format_value(m.cap)}); "
        "this column does not separate the models."
        for m in board.metrics
        if board.at_cap(m)
    ]


def mixed_note(board: Leaderboard) -> str:
    sets = ", ".join(f"{model}: {digest[:10]}" for model, digest in board.clip_sets.items())
    return f"**Mixed clip sets** (--allow-mixed): the models were scored on different test clips ({sets})."


def markdown(board: Leaderboard) -> str:
    _, notes = footnotes(board)
    capped = {m.name for m in board.metrics if board.at_cap(m)}
    headers = ["Frames", "Model", *[m.label + (" †" if m.name in capped else "") for m in board.metrics]]
    lines = [mixed_note(board), ""] if board.mixed else []
    lines += [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * len(board.metrics)) + "|",
    ]
    for group, model, cells in table_rows(board):
        texts = []
        for cell in cells:
            if cell.value is None:
                texts.append(f"–[^{cell.note}]" if cell.note else "–")
            elif cell.rank is not None:
                texts.append(RANK_MARKS[cell.rank].format(format_value(cell.value)))
            else:
                texts.append(format_value(cell.value))
        lines.append(f"| {group} | {model} | " + " | ".join(texts) + " |")
    lines += [
        "",
        "Best **bold**, second <u>underlined</u>, third *italic* per frame count (ties share a mark).",
        "",
        "Metric versions:",
        "",
    ]
    lines += [f"- {m.label} `{m.id}`: {m.version}" for m in board.metrics]
    lines += ["", "Log10 variance of each metric across the frame counts (Table A2; lower = steadier):", ""]
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
        f"{model}: {clips_scored(board, model, ALL_GROUP)} of {board.clips_in_test.get((model, ALL_GROUP))} test clips"
        for model in board.models
        if board.clips_in_test.get((model, ALL_GROUP)) is not None
    ]
    if coverage:
        lines += ["", "Clips scored per run: " + "; ".join(coverage) + "."]
    if capped:
        lines += ["", *[f"† {note}" for note in cap_notes(board)]]
    if notes:
        lines += ["", "Not computed (empty cells, never 0):", ""]
        lines += [f"[^{number}]: {' '.join(reason.split())}" for reason, number in notes.items()]
    return "\n".join(lines) + "\n"


def write_markdown(board: Leaderboard, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(board), encoding="utf-8")
