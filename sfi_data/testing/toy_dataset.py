"""A tiny dataset root (videos.parquet, clips.parquet, clip files, PNG condition frames) for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfi_core.constants import FRAME_COUNTS, STATUS_OK, STATUS_REJECTED
from sfi_core.manifest import write_rows
from sfi_core.schemas import CLIPS, VIDEOS, empty_row


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def build_toy_dataset(
    root: Path,
    num_videos: int = 3,
    scales: tuple[int, ...] = FRAME_COUNTS,
    width: int = 64,
    height: int = 48,
    write_media: bool = True,
    seed: int = 0,
    incomplete_videos: int = 0,
) -> list[dict]:
    """Write a dataset root with `num_videos` videos cut at every scale; returns the clip rows.

    `incomplete_videos` extra videos get every scale but the longest (they cannot enter SFIBench).
    With `write_media=False` only the manifests are written (the paths point at nothing).
    """
    from sfi_data.synthetic import moving_texture_frames, write_video

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    video_rows, clip_rows = [], []
    longest = max(scales)
    for v in range(num_videos + incomplete_videos):
        video_id = f"vid{v:04d}"
        video_scales = scales if v < num_videos else tuple(s for s in scales if s != longest)
        fps = float(rng.choice([24.0, 25.0, 30.0]))
        total = 2 * longest
        similarity, flow = float(rng.uniform(0.6, 0.95)), float(rng.uniform(2.0, 30.0))
        video_rows.append(
            empty_row(VIDEOS)
            | {
                "video_id": video_id,
                "source": f"{video_id}.mp4",
                "path": f"{video_id}.mp4",
                "status": STATUS_OK,
                "stage": "threshold",
                "fps": fps,
                "num_frames": total,
                "width": width,
                "height": height,
                "duration_s": total / fps,
                "codec": "h264",
                "similarity": similarity,
                "flow_score": flow,
                "similarity_backend": "hsv-hist",
                "flow_backend": "dis",
            }
        )
        frames = moving_texture_frames(longest, width, height, dx=1.0, seed=seed + v) if write_media else None
        for scale in video_scales:
            clip_id = f"{video_id}_f{scale:02d}"
            start = total // 2 - scale // 2
            row = empty_row(CLIPS) | {
                "clip_id": clip_id,
                "video_id": video_id,
                "num_frames": scale,
                "start_frame": start,
                "end_frame": start + scale - 1,
                "fps": fps,
                "width": width,
                "height": height,
                "status": STATUS_OK,
                "clip_path": f"clips/{video_id}/{clip_id}.mp4",
                "first_frame_path": f"clips/{video_id}/{clip_id}_first.png",
                "last_frame_path": f"clips/{video_id}/{clip_id}_last.png",
                "similarity": float(np.clip(similarity + rng.normal(0, 0.03), 0, 1)),
                "flow_score": float(max(0.0, flow * scale / longest + rng.normal(0, 0.5))),
                "similarity_backend": "hsv-hist",
                "flow_backend": "dis",
            }
            if write_media:
                clip = frames[:scale]
                write_video(root / row["clip_path"], clip, fps=fps)
                _write_png(root / row["first_frame_path"], clip[0])
                _write_png(root / row["last_frame_path"], clip[-1])
            clip_rows.append(row)
    # One rejected video, so reject reasons have something to show.
    video_rows.append(
        empty_row(VIDEOS)
        | {
            "video_id": "rejected0",
            "source": "rejected0.mp4",
            "path": "rejected0.mp4",
            "status": STATUS_REJECTED,
            "stage": "meta",
            "reason": "fps 60.0 > 30.0",
            "reason_code": "fps_too_high",
            "fps": 60.0,
            "num_frames": 400,
            "width": width,
            "height": height,
            "duration_s": 400 / 60,
        }
    )
    write_rows(video_rows, VIDEOS, root / "videos.parquet")
    write_rows(clip_rows, CLIPS, root / "clips.parquet")
    return clip_rows


# Caption-like sentences (the style of Qwen2.5-VL's dense captions), one per toy video in turn.
TOY_CAPTIONS = (
    "A golden retriever runs across a grassy park, chasing a red ball thrown by its owner.",
    "A red car drives along a winding mountain road while the camera follows from behind.",
    "Aerial view of a waterfall cascading into a turquoise lake surrounded by pine forest.",
    "An animated cartoon rabbit hops through a colorful forest with exaggerated movements.",
    "A woman in a yellow coat talks to the camera and smiles as the wind moves her hair.",
    "Time-lapse of clouds moving over a city skyline at sunset, skyscrapers glowing orange.",
)


def write_toy_captions(root: Path, clips: list[dict], captions: tuple[str, ...] = TOY_CAPTIONS) -> None:
    """DIR/captions.parquet for `clips`: every clip of the i-th video gets captions[i % len]."""
    from sfi_core.schemas import CAPTIONS

    videos = sorted({row["video_id"] for row in clips})
    text = {video: captions[i % len(captions)] for i, video in enumerate(videos)}
    rows = [
        empty_row(CAPTIONS)
        | {
            "clip_id": row["clip_id"],
            "video_id": row["video_id"],
            "num_frames": row["num_frames"],
            "status": STATUS_OK,
            "caption": text[row["video_id"]],
            "model": "toy",
            "prompt_version": "toy",
        }
        for row in clips
    ]
    write_rows(rows, CAPTIONS, root / "captions.parquet")
