"""`sfi-bench score`'s own cost: the scoring harness against the same metrics computed in memory.

One toy run (the `linear` baseline on 3 videos cut at all six scales, 128x72: 18 clips), scored with
the weight-free metrics. The baseline, in this process on the same clips: decode every clip
(`scoring.clip_sample`) and evaluate the metrics in memory (`metrics.suite.evaluate`), nothing
stored. Against it:

- a first `score`: the same work plus the ledger (every (clip, metric) row with its state), the
  per-group merge and the three tables;
- a rerun with every metric stored: the resume check and the tables alone;
- `--metric` with one more metric: that metric's share only (its in-memory time is the baseline).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sfi_bench.generate import BenchRunConfig, ParallelConfig, run_model
from sfi_bench.metrics.suite import evaluate
from sfi_bench.score_run import score_run
from sfi_bench.scoring import clip_sample
from sfi_bench.storage import FrameStore
from sfi_bench.testset import load_test_clips
from sfi_data.testing.toy_dataset import build_toy_dataset

# In this process (--executor local): the code's own cost, not a Ray start-up's.
LOCAL = ParallelConfig(executor="local")

WIDTH, HEIGHT = 128, 72
METRICS = ["temporal_flickering", "endpoint_psnr", "psnr_all"]
ADDED = "ssim_all"


def in_memory(run_dir: Path, metrics: list[str]) -> float:
    """Seconds to decode every generated clip and its ground truth and evaluate `metrics` in memory."""
    start = time.perf_counter()
    store = FrameStore(run_dir)
    info = store.read_run_info()
    clips = load_test_clips(Path(info["clips_manifest"]))
    samples = [clip_sample(store, store.read_record(c.clip_id), c, info["model"]) for c in clips]
    evaluate(samples, metrics, device="cpu")
    return time.perf_counter() - start


def timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as tmp:
        root = Path(tmp)
        build_toy_dataset(root / "data", num_videos=3, width=WIDTH, height=HEIGHT)
        run = root / "run"
        run_model(
            BenchRunConfig(
                model="linear", clips=root / "data" / "clips.parquet", out=run, device="cpu", parallel=LOCAL
            )
        )
        clips = len(load_test_clips(root / "data" / "clips.parquet"))
        in_memory(run, METRICS)  # warm-up: imports, OpenCV and torch start-up
        baseline = min(in_memory(run, METRICS) for _ in range(2))
        first = timed(score_run, run, METRICS, device="cpu", parallel=LOCAL)
        rerun = timed(score_run, run, METRICS, device="cpu", parallel=LOCAL)
        added_baseline = min(in_memory(run, [ADDED]) for _ in range(2))
        added = timed(score_run, run, [ADDED], device="cpu", parallel=LOCAL)
    print(f"{clips} clips, metrics {', '.join(METRICS)}; then --metric {ADDED}")
    print(f"{'':<34} {'seconds':>8} {'x in memory':>12}")
    print(f"{'in memory (decode + evaluate)':<34} {baseline:>8.3f} {1.0:>12.2f}")
    print(f"{'score, first run':<34} {first:>8.3f} {first / baseline:>12.2f}")
    print(f"{'score, rerun with all stored':<34} {rerun:>8.3f} {rerun / baseline:>12.2f}")
    print(f"{'score --metric ' + ADDED:<34} {added:>8.3f} {added / added_baseline:>12.2f}")
