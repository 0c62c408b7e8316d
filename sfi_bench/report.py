"""A static, offline HTML report: ground truth and every model side by side for a sample of clips per scale.

One HTML file plus a sibling folder of images (frame strips as PNG, animated previews as GIF); no
script or style is fetched from anywhere. Per-clip metrics come from each run's scores_clips.parquet.
A small inline script counts images that failed to load into <body data-images-broken> (tests read it
through headless Chromium).
"""

from __future__ import annotations

import html
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sfi_bench.runner import TestClip, load_test_clips, read_ground_truth
from sfi_bench.storage import STATUS_OK, FrameStore

STRIP_FRAMES = 8
THUMB_HEIGHT = 72
PREVIEW_WIDTH = 192

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0; }
td, th { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; font-size: 0.85em; }
th { background: #f4f4f4; }
.clip { margin: 1em 0 2em 0; }
.strip { height: 72px; width: auto; max-width: none; }
.scroll { overflow-x: auto; }
.metrics { white-space: nowrap; }
.metrics .muted { white-space: normal; max-width: 22em; }
.muted { color: #777; }
"""

CHECK_IMAGES = """
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (img) { return !img.complete || img.naturalWidth === 0; }).length;
  document.body.setAttribute('data-images-total', String(images.length));
  document.body.setAttribute('data-images-broken', String(broken));
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


def _thumb(frame: np.ndarray, height: int) -> np.ndarray:
    import cv2

    width = max(1, round(frame.shape[1] * height / frame.shape[0]))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def write_strip(
    frames: np.ndarray, path: Path, count: int = STRIP_FRAMES, height: int = THUMB_HEIGHT
) -> None:
    """`count` evenly spaced frames (first and last included) side by side, 2 px gaps."""
    import cv2

    indices = np.unique(np.rint(np.linspace(0, len(frames) - 1, min(count, len(frames)))).astype(int))
    thumbs = [_thumb(frames[i], height) for i in indices]
    gap = np.full((height, 2, 3), 255, np.uint8)
    parts = [part for thumb in thumbs for part in (thumb, gap)][:-1]
    strip = np.concatenate(parts, axis=1)
    if not cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def write_preview(frames: np.ndarray, path: Path, fps: float, width: int = PREVIEW_WIDTH) -> None:
    """An animated GIF that loops (previews only: metrics never read it)."""
    from PIL import Image

    height = max(1, round(frames.shape[1] * width / frames.shape[2]))
    import cv2

    images = [Image.fromarray(cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)) for f in frames]
    duration_ms = max(20, round(1000 / (fps or 25.0)))
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=False
    )


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return html.escape(str(value))


class ReportBuilder:
    def __init__(self, run_dirs: list[Path], out_html: Path, per_scale: int = 2, seed: int = 0) -> None:
        if not run_dirs:
            raise ValueError("give at least one run directory")
        self.views = [load_run_view(d) for d in run_dirs]
        self.out_html = Path(out_html)
        self.assets = self.out_html.with_name(f"{self.out_html.stem}_files")
        self.per_scale = per_scale
        self.seed = seed
        manifest = Path(self.views[0].info["clips_manifest"])
        self.clips = load_test_clips(manifest)

    def _asset(self, name: str) -> str:
        return f"{self.assets.name}/{name}"

    def _media_row(
        self,
        label: str,
        frames: np.ndarray | None,
        key: str,
        fps: float,
        note: str = "",
        scores: dict | None = None,
        metric_names: list[str] | None = None,
    ) -> str:
        if frames is None:
            media = f'<td colspan="2" class="muted">{html.escape(note or "not available")}</td>'
        else:
            write_preview(frames, self.assets / f"{key}.gif", fps)
            write_strip(frames, self.assets / f"{key}_strip.png")
            media = (
                f'<td><img src="{self._asset(key + ".gif")}" alt="{html.escape(label)} preview"></td>'
                f'<td><img class="strip" src="{self._asset(key + "_strip.png")}" '
                f'alt="{html.escape(label)} frames"><div class="muted">{html.escape(note)}</div></td>'
            )
        shown = [
            f"{html.escape(m)} = {_fmt(scores[m])}"
            for m in metric_names or []
            if scores and scores.get(m) is not None
        ]
        missing = [m for m in metric_names or [] if not scores or scores.get(m) is None]
        cell = "<br>".join(shown)
        if missing and scores:
            cell += f'<div class="muted">not computed: {html.escape(", ".join(missing))}</div>'
        return f'<tr><th>{html.escape(label)}</th>{media}<td class="metrics">{cell}</td></tr>'

    def _clip_section(self, clip: TestClip, metric_names: list[str]) -> str:
        key = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in clip.clip_id)
        rows = [
            self._media_row(
                "ground truth",
                read_ground_truth(clip),
                f"{key}__gt",
                clip.fps,
                note="" if clip.clip_path and clip.clip_path.is_file() else "clip file missing",
                metric_names=metric_names,
            )
        ]
        for index, view in enumerate(self.views):
            record = view.records.get(clip.clip_id)
            if record is None or record.status != STATUS_OK:
                reason = "not run" if record is None else f"{record.status}: {record.reason or ''}"
                rows.append(
                    self._media_row(view.model, None, "", clip.fps, note=reason, metric_names=metric_names)
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
            rows.append(
                self._media_row(
                    view.model,
                    frames,
                    f"{key}__m{index}",
                    clip.fps,
                    "; ".join(notes),
                    view.clip_scores.get(clip.clip_id),
                    metric_names,
                )
            )
        prompt = f"<div>caption: {html.escape(clip.prompt)}</div>" if clip.prompt else ""
        return (
            f'<div class="clip" id="{html.escape(key)}"><h3>{html.escape(clip.clip_id)} '
            f'<span class="muted">N={clip.num_frames}</span></h3>{prompt}'
            f'<div class="scroll"><table><tr><th></th><th>preview</th><th>frames (first … last)</th><th>metrics (this clip)</th></tr>'
            + "".join(rows)
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
            "<table><tr><th>model</th><th>version</th><th>source</th><th>clips</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    def build(self) -> Path:
        self.assets.mkdir(parents=True, exist_ok=True)
        metric_names: list[str] = []
        for view in self.views:
            metric_names += [m for m in view.metric_names if m not in metric_names]
        sections = []
        for num_frames, clips in sample_clips(self.clips, self.views, self.per_scale, self.seed).items():
            sections.append(f"<h2>N = {num_frames}</h2>")
            sections += [self._clip_section(clip, metric_names) for clip in clips]
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            "<title>SFIBench report</title>"
            f"<style>{STYLE}</style></head><body>"
            f'<h1>SFIBench report</h1><p class="muted">{len(self.clips)} test clips; '
            f"{self.per_scale} shown per frame count. Per-clip metrics from each run's scores_clips.parquet "
            "(– = not computed). Previews are GIFs for viewing only; metrics read the lossless frames.</p>"
            + self._overview()
            + "".join(sections)
            + f"<script>{CHECK_IMAGES}</script></body></html>"
        )
        self.out_html.parent.mkdir(parents=True, exist_ok=True)
        self.out_html.write_text(page, encoding="utf-8")
        return self.out_html


def build_report(run_dirs: list[Path], out_html: Path, per_scale: int = 2, seed: int = 0) -> Path:
    return ReportBuilder(run_dirs, out_html, per_scale, seed).build()
