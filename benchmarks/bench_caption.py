"""Caption throughput against the loopback fake vLLM server, concurrency 1 vs 16 (issue 3), and batch sizes.

This measures our side only: sampling and decoding the frames, JPEG + base64, the HTTP round trip,
retries and the part-file writes of the caption Stage (one per batch). The server answers instantly (latency 0: pure overhead)
or after a fixed delay standing in for the model (what bounded concurrency is for). Both sides of
each ratio run in this process on the same clips, best of two interleaved repeats.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from sfi_core.config import ExecutionConfig
from sfi_data.captioning import CAPTIONS_MANIFEST, PARTS_DIR, CaptionConfig, run_captions
from sfi_data.testing.fake_vllm import FAKE_MODEL, FakeVLLMServer
from sfi_data.testing.toy_dataset import build_toy_dataset

# In this process (--executor local): the code's own cost, not a Ray start-up's.
LOCAL = ExecutionConfig(executor="local")

NUM_VIDEOS = 8  # x 6 scales = 48 clips
WIDTH, HEIGHT = 320, 192
FRAMES, MAX_SIDE = 8, 448
MODEL_LATENCY_S = 0.05
REPEATS = 2


def _clear(root: Path) -> None:
    (root / CAPTIONS_MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(root / PARTS_DIR, ignore_errors=True)


def throughput(root: Path, server: FakeVLLMServer, concurrency: int, batch_size: int = 64) -> float:
    """Clips per second of one full captioning run (best of REPEATS)."""
    best = 0.0
    config = CaptionConfig(
        api_bases=[server.url],
        model=FAKE_MODEL,
        frames=FRAMES,
        max_side=MAX_SIDE,
        concurrency=concurrency,
        timeout_s=30.0,
        batch_size=batch_size,
    )
    for _ in range(REPEATS):
        _clear(root)
        start = time.perf_counter()
        summary = run_captions(root, config, run=LOCAL)
        seconds = time.perf_counter() - start
        if summary.failed:
            raise RuntimeError(f"{summary.failed} captions failed during the benchmark: {summary.reasons}")
        best = max(best, summary.ok / seconds)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_caption_") as tmp:
        root = Path(tmp)
        clips = build_toy_dataset(root, num_videos=NUM_VIDEOS, width=WIDTH, height=HEIGHT)
        print(
            f"{len(clips)} clips of {WIDTH}x{HEIGHT}, {FRAMES} frames each sent at <= {MAX_SIDE} px as JPEG"
        )
        with FakeVLLMServer(max_images=FRAMES) as server:
            for latency in (0.0, MODEL_LATENCY_S):
                server.inject(latency_s=latency)
                serial = throughput(root, server, 1)
                parallel = throughput(root, server, 16)
                label = (
                    "instant server (our overhead)"
                    if latency == 0
                    else f"server latency {latency * 1000:.0f} ms"
                )
                print(
                    f"{label}: concurrency 1 {serial:7.1f} clips/s ({1000 / serial:6.1f} ms/clip), "
                    f"concurrency 16 {parallel:7.1f} clips/s ({1000 / parallel:6.1f} ms/clip), "
                    f"ratio {parallel / serial:.2f}x"
                )
            # A batch ends when its slowest request does: this line shows what that tail costs when
            # batches are no larger than the concurrency (the default batch is 64 clips).
            small = throughput(root, server, 16, batch_size=16)
            print(
                f"server latency {MODEL_LATENCY_S * 1000:.0f} ms, concurrency 16: batches of 16 "
                f"{small:7.1f} clips/s, batches of 48 (one) {throughput(root, server, 16):7.1f} clips/s"
            )


if __name__ == "__main__":
    main()
