"""Cut (paper eq. 3): the centred clip of every scale s in S from each kept video, from one decode.

Rounding: a video of f frames is centred on frame c = floor(f / 2); the clip of s frames (s odd) spans
[c - floor(s/2), c + floor(s/2)], inclusive, so it has exactly s frames and every scale shares the centre.
With f >= f_max = 81 every clip lies inside the video.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sfi_core.constants import STATUS_ERROR, STATUS_OK, STATUS_REJECTED
from sfi_core.inputs import resolve_source
from sfi_core.manifest import atomic_path
from sfi_core.schemas import CLIPS, empty_row
from sfi_core.stage import UNEXPECTED, Stage, describe_error
from sfi_core.video import VideoError, cpu_budget, encode_video, even_size, read_frames
from sfi_data.config import CutConfig, ScoreConfig, to_dict
from sfi_data.scoring import PairScorer


def centred_range(num_frames: int, clip_frames: int) -> tuple[int, int]:
    """(start, end) inclusive frame indices of the centred clip; raises if it does not fit."""
    if clip_frames < 1 or clip_frames > num_frames:
        raise ValueError(f"a {clip_frames}-frame clip does not fit in {num_frames} frames")
    centre = num_frames // 2
    start = centre - clip_frames // 2
    start = min(max(start, 0), num_frames - clip_frames)
    return start, start + clip_frames - 1


def clip_id_for(video_id: str, clip_frames: int) -> str:
    return f"{video_id}_{clip_frames:02d}"


def consecutive_diffs(frames: np.ndarray, side: int = 64) -> np.ndarray:
    """Mean |difference| (0-255) between each pair of consecutive frames, on small greyscale copies."""
    import cv2

    if len(frames) < 2:
        return np.zeros(0)
    small = np.stack(
        [
            cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (side, side), interpolation=cv2.INTER_AREA)
            for f in frames
        ]
    ).astype(np.int16)
    return np.abs(np.diff(small, axis=0)).mean(axis=(1, 2))


def max_consecutive_diff(frames: np.ndarray, side: int = 64) -> float:
    """Largest mean |difference| (0-255) between consecutive frames, on small greyscale copies."""
    diffs = consecutive_diffs(frames, side)
    return float(diffs.max()) if len(diffs) else 0.0


def hard_cut_reason(diffs: np.ndarray, config: CutConfig) -> str | None:
    """Why the frames hold a hard cut, or None. Frame pair i is (i, i + 1) of the clip.

    A cut is a jump larger than `hard_cut_threshold`, or an isolated spike: larger than
    `hard_cut_min_diff` and `hard_cut_ratio` times both neighbouring differences. Motion (a fast pan,
    a passing car) raises several consecutive differences together, so its ratio stays near 1.
    """
    if config.hard_cut_threshold is None:
        return None
    for i, diff in enumerate(diffs):
        if diff > config.hard_cut_threshold:
            return (
                f"hard cut inside the clip: frames {i}-{i + 1} differ by {diff:.1f} "
                f"> {config.hard_cut_threshold:g}"
            )
        if config.hard_cut_ratio is None or diff <= config.hard_cut_min_diff:
            continue
        neighbours = [float(diffs[j]) for j in (i - 1, i + 1) if 0 <= j < len(diffs)]
        ratio = diff / max(max(neighbours, default=0.0), 1.0)
        if ratio > config.hard_cut_ratio:
            return (
                f"hard cut inside the clip: frames {i}-{i + 1} differ by {diff:.1f}, "
                f"{ratio:.1f}x their neighbours (> {config.hard_cut_ratio:g}x)"
            )
    return None


def write_png(image: np.ndarray, path: Path) -> None:
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


class CutStage(Stage):
    name = "cut"
    # Each video yields every scale's clip: shards of fewer videos keep workers busy on a small corpus.
    shard_size = 4

    def __init__(
        self,
        root: Path,
        config: CutConfig,
        score: ScoreConfig | None = None,
        weights_dir: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.config = config
        self.scorer = PairScorer(score, weights_dir) if (score and config.score_clips) else None

    def settings(self) -> dict:
        settings = to_dict(self.config)
        settings["score"] = self.scorer.settings() if self.scorer else None
        return settings

    def setup(self) -> None:
        if self.scorer:
            self.scorer.setup()

    @property
    def encoder(self) -> str:
        return f"{self.config.codec} crf={self.config.crf} preset={self.config.preset} {self.config.pix_fmt}"

    def _row(self, video: dict, clip_frames: int) -> dict:
        row = empty_row(CLIPS)
        row.update(
            clip_id=clip_id_for(video["video_id"], clip_frames),
            video_id=video["video_id"],
            num_frames=clip_frames,
            fps=video["fps"],
            encoder=self.encoder,
        )
        return row

    def process_row(self, video: dict) -> list[dict]:
        num_frames = int(video["num_frames"])
        scales = sorted(self.config.frame_counts)
        ranges = {s: centred_range(num_frames, s) for s in scales}
        first = min(r[0] for r in ranges.values())
        last = max(r[1] for r in ranges.values())
        offset = video.get("segment_start") or 0
        try:
            # One decode of the centre frames serves every scale.
            frames = read_frames(
                resolve_source(video, self.root),
                list(range(first, last + 1)),
                offset=offset,
                reader=self.config.reader,
            )
        except VideoError as error:
            return [
                self._row(video, s)
                | {
                    "status": STATUS_ERROR,
                    "reason": f"decode for cut: {error}",
                    "reason_code": "decode_failed",
                }
                for s in scales
            ]
        rows, pairs, jobs = [], [], []
        width, height = even_size(frames.shape[2], frames.shape[1])
        # The clips are nested: one pass over the decoded frames gives every clip's differences.
        all_diffs = consecutive_diffs(frames)
        for s in scales:
            start, end = ranges[s]
            clip = frames[start - first : end - first + 1]
            cid = clip_id_for(video["video_id"], s)
            row = self._row(video, s) | {
                # Indices into the source file (a virtual segment starts at segment_start).
                "start_frame": offset + start,
                "end_frame": offset + end,
                "width": width,
                "height": height,
            }
            diffs = all_diffs[start - first : end - first]
            row["max_frame_diff"] = float(diffs.max()) if len(diffs) else 0.0
            reason = hard_cut_reason(diffs, self.config)
            if reason:
                row.update(status=STATUS_REJECTED, reason=reason, reason_code="hard_cut")
                rows.append(row)
                continue
            rel_clip = Path("clips") / video["video_id"] / f"{cid}.mp4"
            rel_first = Path("frames") / video["video_id"] / f"{cid}_first.png"
            rel_last = Path("frames") / video["video_id"] / f"{cid}_last.png"
            row.update(
                status=STATUS_OK,
                clip_path=rel_clip.as_posix(),
                first_frame_path=rel_first.as_posix(),
                last_frame_path=rel_last.as_posix(),
            )
            rows.append(row)
            pairs.append((row, clip[0], clip[-1]))
            jobs.append((clip, row))
        self._write_clips(jobs, video["fps"])
        if self.scorer and pairs:
            scores = self.scorer.score([(a, b) for _, a, b in pairs])
            for (row, _, _), (similarity, flow) in zip(pairs, scores, strict=True):
                row.update(
                    similarity=similarity,
                    flow_score=flow,
                    similarity_backend=self.scorer.similarity_name,
                    flow_backend=self.scorer.flow_name,
                )
        return rows

    def _write_clip(self, clip: np.ndarray, row: dict, fps: float, threads: int | None) -> None:
        with atomic_path(self.root / row["clip_path"]) as tmp:
            encode_video(
                clip,
                tmp,
                fps,
                codec=self.config.codec,
                pix_fmt=self.config.pix_fmt,
                crf=self.config.crf,
                preset=self.config.preset,
                threads=threads,
            )
        write_png(clip[0], self.root / row["first_frame_path"])
        write_png(clip[-1], self.root / row["last_frame_path"])

    def _write_clips(self, jobs: list[tuple[np.ndarray, dict]], fps: float) -> None:
        """Encode every clip (and its end frames), several at once when this worker has several cores.

        Encoders side by side, each with its share of the cores, keep the cores busier than one
        multi-threaded encoder after another: the short clips (5, 9, 17 frames) leave a
        frame-threaded x264 mostly idle. The clips are the same; only the scheduling differs.
        """
        workers = min(len(jobs), cpu_budget())
        if workers <= 1:
            for clip, row in jobs:
                self._write_clip(clip, row, fps, None)
            return
        threads = max(1, cpu_budget() // workers)
        # Longest first, so the longest clip does not start last.
        ordered = sorted(jobs, key=lambda job: -len(job[0]))
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(self._write_clip, clip, row, fps, threads) for clip, row in ordered]
            for future in futures:
                future.result()

    def error_rows(self, video: dict, error: BaseException) -> list[dict]:
        return [
            self._row(video, s)
            | {"status": STATUS_ERROR, "reason": describe_error(error), "reason_code": UNEXPECTED}
            for s in sorted(self.config.frame_counts)
        ]
