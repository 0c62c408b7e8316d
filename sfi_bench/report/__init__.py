"""A static, offline HTML report: the leaderboard and plots first, then ground truth and every model per clip.

One HTML file plus a sibling folder (plots as SVG and PNG, frame strips as JPEG, looping previews as
H.264 MP4 in <video> tags); nothing is fetched from anywhere. Per-clip metrics come from each run's
scores_clips.parquet. A small inline script counts images and videos that failed to load into
<body data-media-broken> (tests read it through headless Chromium).
"""

from __future__ import annotations

import html
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sfi_bench.leaderboard import Leaderboard, leaderboard_from_runs, read_run_scores
from sfi_bench.plots import write_plots
from sfi_bench.report.board import board_html, plots_html
from sfi_bench.report.media import PREVIEW_SUFFIX, STRIP_SUFFIX, write_preview, write_strip
from sfi_bench.storage import STATUS_OK, FrameStore
from sfi_bench.testset import TestClip, load_test_clips, read_ground_truth

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; }
td, th { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; font-size: 0.85em; }
th { background: #f4f4f4; }
#leaderboard td { text-align: right; white-space: nowrap; } #leaderboard td:nth-child(-n+2) { text-align: left; }
.best { font-weight: bold; } .second { text-decoration: underline; } .third { font-style: italic; }
#plots { display: flex; flex-wrap: wrap; gap: 1em; } .plot { width: 34em; max-width: 100%; }
.clip { margin: 1em 0 2em 0; }
.strip { height: 72px; width: auto; max-width: none; }
.scroll { overflow-x: auto; }
.metrics { white-space: nowrap; }
.metrics .muted { white-space: normal; max-width: 22em; }
.muted { color: #777; } .warn { color: #a40; font-weight: bold; }
"""

CHECK_MEDIA = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !img.complete || img.naturalWidth === 0; }).length;
  var videos = Array.prototype.slice.call(document.getElementsByTagName('video'));
  var badVideos = videos.filter(function (v) { return v.error !== null; }).length;
  document.body.setAttribute('data-images-total', String(images.length));
  document.body.setAttribute('data-images-broken', String(broken));
  document.body.setAttribute('data-videos-total', String(videos.length));
  document.body.setAttribute('data-media-broken', String(broken + badVideos));
  var board = document.getElementById('leaderboard');
  if (board) {
    document.body.setAttribute('data-leaderboard-top', String(Math.round(board.getBoundingClientRect().top)));
  }
});
"""


@dataclass
class RunView:
    """What the report needs from one run directory."""

    run_dir: Path
    model: str
    info: dict
    store: FrameStore
    records: dict  # clip_id -> ClipRecord
    clip_scores: dict[str, dict] = field(default_factory=dict)  # clip_id -> metric values
    metric_names: list[str] = field(default_factory=list)


def load_run_view(run_dir: Path) -> RunView:
    store = FrameStore(run_dir)
    info = store.read_run_info()
    view = RunView(Path(run_dir), info["model"], info, store, {r.clip_id: r for r in store.records()})
    scores = Path(run_dir) / "scores_clips.parquet"
    if scores.is_file():
        import pyarrow.parquet as pq

        rows = pq.read_table(scores).to_pylist()
        view.clip_scores = {row["clip_id"]: row for row in rows}
        view.metric_names = [
            c for c in (rows[0] if rows else {}) if c not in ("model", "clip_id", "num_frames")
        ]
    return view


def sample_clips(
    clips: list[TestClip], views: list[RunView], per_scale: int, seed: int
) -> dict[int, list[TestClip]]:
    """Up to `per_scale` clips of each N (seeded), preferring clips that every run generated."""
    rng = random.Random(seed)
    chosen: dict[int, list[TestClip]] = {}
    for num_frames in sorted({c.num_frames for c in clips}):
        group = sorted((c for c in clips if c.num_frames == num_frames), key=lambda c: c.clip_id)

        def done_by(clip: TestClip) -> int:
            return sum(1 for v in views if getattr(v.records.get(clip.clip_id), "status", None) == STATUS_OK)

        rng.shuffle(group)
        group.sort(key=done_by, reverse=True)  # stable: shuffled order kept among equals
        chosen[num_frames] = group[:per_scale]
    return chosen


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return html.escape(str(value))


def _metric_cell(scores: dict | None, metric_names: list[str]) -> str:
    shown = [
        f"{html.escape(m)} = {_fmt(scores[m])}" for m in metric_names if scores and scores.get(m) is not None
    ]
    missing = [m for m in metric_names if not scores or scores.get(m) is None]
    cell = "<br>".join(shown)
    if missing and scores:
        cell += f'<div class="muted">not computed: {html.escape(", ".join(missing))}</div>'
    return f'<td class="metrics">{cell}</td>'


class ReportBuilder:
    def __init__(self, run_dirs: list[Path], out_html: Path, per_scale: int = 2, seed: int = 0) -> None:
        if not run_dirs:
            raise ValueError("give at least one run directory")
        self.run_dirs = [Path(d) for d in run_dirs]
        self.views = [load_run_view(d) for d in self.run_dirs]
        self.out_html = Path(out_html)
        self.assets = self.out_html.with_name(f"{self.out_html.stem}_files")
        self.per_scale = per_scale
        self.seed = seed
        self.clips = load_test_clips(Path(self.views[0].info["clips_manifest"]))

    def _asset(self, name: str) -> str:
        return f"{self.assets.name}/{name}"

    def _media_row(self, label: str, frames: np.ndarray | None, key: str, fps: float, note: str = "") -> str:
        if frames is None:
            return f'<th>{html.escape(label)}</th><td colspan="2" class="muted">{html.escape(note or "not available")}</td>'
        write_preview(frames, self.assets / f"{key}{PREVIEW_SUFFIX}", fps)
        write_strip(frames, self.assets / f"{key}_strip{STRIP_SUFFIX}")
        return (
            f"<th>{html.escape(label)}</th>"
            f'<td><video src="{self._asset(key + PREVIEW_SUFFIX)}" autoplay loop muted playsinline '
            f'preload="auto" title="{html.escape(label)} preview"></video></td>'
            f'<td><img class="strip" src="{self._asset(key + "_strip" + STRIP_SUFFIX)}" '
            f'alt="{html.escape(label)} frames"><div class="muted">{html.escape(note)}</div></td>'
        )

    def _clip_section(self, clip: TestClip, metric_names: list[str]) -> str:
        key = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in clip.clip_id)
        truth_note = "" if clip.clip_path and clip.clip_path.is_file() else "clip file missing"
        rows = [
            self._media_row("ground truth", read_ground_truth(clip), f"{key}__gt", clip.fps, truth_note)
            + _metric_cell(None, metric_names)
        ]
        for index, view in enumerate(self.views):
            record = view.records.get(clip.clip_id)
            if record is None or record.status != STATUS_OK:
                reason = "not run" if record is None else f"{record.status}: {record.reason or ''}"
                rows.append(
                    self._media_row(view.model, None, "", clip.fps, reason) + _metric_cell(None, metric_names)
                )
                continue
            notes = []
            if record.resampled:
                notes.append(
                    f"resampled {record.native_num_frames}→{record.num_frames} ({record.resample_mode})"
                )
            if record.resized_from:
                notes.append(f"resized from {record.resized_from}")
            frames = view.store.read_frames(record.frames_path)
            media = self._media_row(view.model, frames, f"{key}__m{index}", clip.fps, "; ".join(notes))
            rows.append(media + _metric_cell(view.clip_scores.get(clip.clip_id), metric_names))
        prompt = f"<div>caption: {html.escape(clip.prompt)}</div>" if clip.prompt else ""
        return (
            f'<div class="clip" id="{html.escape(key)}"><h3>{html.escape(clip.clip_id)} '
            f'<span class="muted">N={clip.num_frames}</span></h3>{prompt}'
            '<div class="scroll"><table><tr><th></th><th>preview</th><th>frames (first … last)</th>'
            "<th>metrics (this clip)</th></tr>"
            + "".join(f"<tr>{row}</tr>" for row in rows)
            + "</table></div></div>"
        )

    def _overview(self) -> str:
        rows = []
        for view in self.views:
            statuses: dict[str, int] = {}
            for record in view.records.values():
                statuses[record.status] = statuses.get(record.status, 0) + 1
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
            rows.append(
                f"<tr><td>{html.escape(view.model)}</td><td>{html.escape(str(view.info.get('model_version')))}"
                f"</td><td>{html.escape(view.info.get('kind', 'run'))}</td><td>{html.escape(counts)}</td></tr>"
            )
        return (
            '<table id="runs"><tr><th>model</th><th>version</th><th>source</th><th>clips</th></tr>'
            + "".join(rows)
            + "</table>"
        )

    def _leaderboard(self) -> str:
        """The table and plots of the scored runs (all of them, mixed test sets marked); a note if none."""
        scored = [d for d in self.run_dirs if (d / "scores_summary.parquet").is_file()]
        if not scored:
            return '<p class="muted">No run is scored yet: `sfi-bench score RUNDIR...` adds the leaderboard here.</p>'
        board: Leaderboard = leaderboard_from_runs([read_run_scores(d) for d in scored], allow_mixed=True)
        plots = write_plots(board, self.assets / "plots")
        unscored = [v.model for v in self.views if v.run_dir not in scored]
        note = (
            f'<p class="muted">Not scored, so not ranked: {html.escape(", ".join(unscored))}.</p>'
            if unscored
            else ""
        )
        return board_html(board) + note + "<h2>Plots</h2>" + plots_html(plots, self.assets.name)

    def build(self) -> Path:
        self.assets.mkdir(parents=True, exist_ok=True)
        metric_names: list[str] = []
        for view in self.views:
            metric_names += [m for m in view.metric_names if m not in metric_names]
        top = "<h2>Leaderboard</h2>" + self._leaderboard() + "<h2>Runs</h2>" + self._overview()
        sections = ['<h2 id="clips">Clips</h2>']
        for num_frames, clips in sample_clips(self.clips, self.views, self.per_scale, self.seed).items():
            sections.append(f"<h2>N = {num_frames}</h2>")
            sections += [self._clip_section(clip, metric_names) for clip in clips]
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            "<title>SFIBench report</title>"
            f"<style>{STYLE}</style></head><body>"
            f'<h1>SFIBench report</h1><p class="muted">{len(self.clips)} test clips; '
            f"{self.per_scale} shown per frame count below the leaderboard. Previews are H.264 videos for "
            "viewing only; metrics read the lossless frames.</p>"
            + top
            + "".join(sections)
            + f"<script>{CHECK_MEDIA}</script></body></html>"
        )
        self.out_html.parent.mkdir(parents=True, exist_ok=True)
        self.out_html.write_text(page, encoding="utf-8")
        return self.out_html


def build_report(run_dirs: list[Path], out_html: Path, per_scale: int = 2, seed: int = 0) -> Path:
    return ReportBuilder(run_dirs, out_html, per_scale, seed).build()
