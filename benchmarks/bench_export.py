"""`sfi-data export` throughput (clips/s, MB/s) against a plain GNU `tar -cf` of the same files (issue 22).

Both sides run in this process's machine on the same clip files, warm in the page cache, best of
REPEATS interleaved runs, each into a fresh folder. The export does more than tar: it plans the shards
(a stat and a digest of every row), adds the `json` member, hashes every byte (sha256) and records
each shard in its ledger; the target is >= 0.7x tar's MB/s. One shard of everything (the default
bound is 1 GiB) and shards of 8 clips (the per-shard cost: a temporary file, a rename, a ledger part).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from sfi_core.config import ExecutionConfig
from sfi_data.config_dataset import ExportConfig, SplitConfig
from sfi_data.export import run_export
from sfi_data.split import run_split
from sfi_data.testing.toy_dataset import build_toy_dataset, write_toy_captions

# In this process (--executor local): the code's own cost, not a Ray start-up's.
LOCAL = ExecutionConfig(executor="local")

NUM_VIDEOS = 8  # x 6 scales = 48 clips, ~90 MB: fixed costs (plan, ledger) amortised as in a real export
WIDTH, HEIGHT = 640, 360
REPEATS = 3
TARGET = 0.7


def _files(root: Path) -> list[str]:
    rows = [r for split in ("train", "test") for r in pq.read_table(root / f"{split}.parquet").to_pylist()]
    return [r[k] for r in rows for k in ("clip_path", "first_frame_path", "last_frame_path")]


def _tar(root: Path, files: list[str], out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["tar", "-cf", str(out), "-C", str(root), *files], check=True)
    return time.perf_counter() - start


def _export(root: Path, dest: Path, shard_size: int | None) -> float:
    start = time.perf_counter()
    summary = run_export(root, ExportConfig(dest=str(dest), shard_size=shard_size), run=LOCAL)
    assert summary.failed == 0
    return time.perf_counter() - start


def main() -> None:
    if shutil.which("tar") is None:
        print("tar not found: the baseline needs GNU tar (apt-get install -y tar)")
        return
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        root = Path(tmp) / "data"
        clips = build_toy_dataset(root, num_videos=NUM_VIDEOS, width=WIDTH, height=HEIGHT)
        write_toy_captions(root, clips)
        run_split(root, SplitConfig(num_videos=1, near_duplicates=False), run=LOCAL)
        files = _files(root)
        size = sum((root / f).stat().st_size for f in files)
        count = len(files) // 3
        best = {"tar": float("inf"), "export": float("inf"), "export 8/shard": float("inf")}
        for repeat in range(REPEATS):
            run = Path(tmp) / f"r{repeat}"
            best["tar"] = min(best["tar"], _tar(root, files, run.with_suffix(".tar")))
            best["export"] = min(best["export"], _export(root, run / "one", None))
            best["export 8/shard"] = min(best["export 8/shard"], _export(root, run / "eight", 8))
        print(f"{count} clips, {size / 1e6:.1f} MB of clip and PNG files (best of {REPEATS})")
        print(f"{'':<16} {'s':>7} {'clips/s':>9} {'MB/s':>8} {'x tar':>7}")
        for name, seconds in best.items():
            ratio = best["tar"] / seconds
            print(
                f"{name:<16} {seconds:>7.3f} {count / seconds:>9.1f} {size / seconds / 1e6:>8.1f} {ratio:>7.2f}"
            )
        ratio = best["tar"] / best["export"]
        print(f"export vs tar: {ratio:.2f}x (target >= {TARGET}x): {'pass' if ratio >= TARGET else 'FAIL'}")


if __name__ == "__main__":
    main()
