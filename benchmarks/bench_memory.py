"""Driver memory (issue 16.4): peak RSS of filter and cut from 100 to 10,000 videos; planning a 1M-row list.

Each measure runs in a fresh process (VmHWM, the peak resident set, starts afresh at exec), after the
imports, so a figure is what the run itself adds to a process that already holds the libraries.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.bench_curation import Check, check, copies, run_child
from sfi_core.video import encode_video
from sfi_data.config import CutConfig, FilterStageConfig, RunConfig, ScoreConfig
from sfi_data.synthetic import moving_texture_frames

# SFI_BENCH_MEMORY_VIDEOS=30000 measures further out (the filter then takes ~2 min, the cut ~4 min here).
RSS_SMALL, RSS_LARGE = 100, int(os.environ.get("SFI_BENCH_MEMORY_VIDEOS", "10000"))
PLAN_ROWS = 1_000_000
PLAN_SHARD_SIZE = 8
# One scale and no clip scores: the cut's driver side (rows in, manifest out) is what is measured, and
# encoding six clips of 10,000 videos would take most of an hour here.
CUT = CutConfig(frame_counts=(5,), score_clips=False, preset="ultrafast")
SCORE = ScoreConfig(similarity="hsv-hist", flow="dis", device="cpu", flow_width=64, flow_height=36)


def peak_rss_mib() -> float:
    """This process's peak resident set size.

    Linux's VmHWM belongs to the process image and starts afresh at exec; ru_maxrss would carry the
    high-water mark of the (large) benchmark parent that forked this child.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_tiny(path: Path, seed: int) -> Path:
    frames = moving_texture_frames(81, 32, 32, dx=1.0, seed=seed)
    encode_video(frames, path, 24.0, crf=30, preset="ultrafast", extra={"g": "24"})
    return path


# ---------------------------------------------------------------- filter and cut


def _rss_child(command: str, files: list[str], out_dir: str, queue) -> None:
    from sfi_data.pipeline import run_cut, run_filter

    imported = peak_rss_mib()
    start = time.perf_counter()
    run = RunConfig(executor="local", shard_size=8)
    if command == "filter":
        summary = run_filter(files, Path(out_dir), FilterStageConfig(score=SCORE), run)
    else:
        summary = run_cut(Path(out_dir), CUT, run)
    queue.put(
        {
            "peak_mib": peak_rss_mib(),
            "imported_mib": imported,
            "seconds": time.perf_counter() - start,
            "ok": summary.statuses["ok"],
        }
    )


def bench_rss(work: Path) -> list[Check]:
    tiny = [make_tiny(work / f"tiny_{i}.mp4", seed=i) for i in range(4)]
    files = [str(p) for p in copies(tiny, work / "rss_inputs", RSS_LARGE)]
    checks = []
    for command in ("filter", "cut"):  # the cut reads the filter's videos.parquet of the same size
        results = {
            n: run_child(_rss_child, command, files[:n], str(work / f"rss_{n}"))
            for n in (RSS_SMALL, RSS_LARGE)
        }
        small, large = results[RSS_SMALL], results[RSS_LARGE]
        for n, result in results.items():
            if result["ok"] == 0:
                raise RuntimeError(f"{command}: nothing came out ok in the {n}-video run")
        growth = large["peak_mib"] / small["peak_mib"] - 1
        print(
            f"  peak RSS of run_{command} (local executor, after imports of {small['imported_mib']:.0f} MiB): "
            f"{RSS_SMALL} videos {small['peak_mib']:.0f} MiB ({small['seconds']:.1f} s), "
            f"{RSS_LARGE:,} videos {large['peak_mib']:.0f} MiB ({large['seconds']:.1f} s)"
        )
        checks.append(
            check(
                f"{command} peak RSS growth {RSS_SMALL} -> {RSS_LARGE:,} videos",
                1 + growth,
                "< 1.20x",
                growth < 0.20,
            )
        )
    return checks


# ---------------------------------------------------------------- planning a 1M-row list


def _plan_child(list_file: str, out_dir: str, arrow: bool, queue) -> None:
    import pyarrow as pa

    from sfi_core.executors.base import plan_shards
    from sfi_core.shard_plan import plan_table_shards
    from sfi_data.discover import discover
    from sfi_data.discover_table import discover_table

    pa.array(["x"])  # pyarrow imports pandas at its first array from Python objects: before the baseline
    imported = peak_rss_mib()
    parts = Path(out_dir) / "work" / "filter"
    start = time.perf_counter()
    if arrow:
        plan = plan_table_shards(
            discover_table([], Path(out_dir), [list_file]), "video_id", parts, PLAN_SHARD_SIZE
        )
        shards, inputs = len(plan), plan.inputs
    else:
        planned, _ = plan_shards(discover([], Path(out_dir), [list_file]), "video_id", parts, PLAN_SHARD_SIZE)
        shards, inputs = len(planned), sum(len(shard.rows) for shard in planned)
    queue.put(
        {
            "seconds": time.perf_counter() - start,
            "added_mib": peak_rss_mib() - imported,
            "shards": shards,
            "inputs": inputs,
        }
    )


def bench_planning(work: Path) -> Check:
    list_file = work / "million.txt"
    with list_file.open("w", encoding="utf-8") as out:
        for i in range(PLAN_ROWS):
            out.write(f"/data/videos/{i // 1000:04d}/clip_{i:07d}.mp4\n")
    runs = {
        arrow: run_child(_plan_child, str(list_file), str(work / "plan_out"), arrow)
        for arrow in (False, True)
    }
    for arrow, result in runs.items():
        if result["inputs"] != PLAN_ROWS:
            raise RuntimeError(f"planning (arrow={arrow}) kept {result['inputs']} of {PLAN_ROWS} rows")
    dicts, arrow = runs[False], runs[True]
    print(
        f"  planning {PLAN_ROWS:,} listed inputs into {arrow['shards']:,} shards of {PLAN_SHARD_SIZE}: "
        f"discover + plan_shards (row dicts) {dicts['seconds']:.1f} s, +{dicts['added_mib']:.0f} MiB peak; "
        f"discover_table + plan_table_shards (Arrow) {arrow['seconds']:.1f} s, +{arrow['added_mib']:.0f} MiB peak"
    )
    ratio = dicts["added_mib"] / arrow["added_mib"]
    return check("1M-row planning memory, row dicts vs Arrow", ratio, ">= 3x", ratio >= 3)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sfi-bench-memory-") as tmp:
        work = Path(tmp)
        checks = [bench_planning(work), *bench_rss(work)]
    failed = [c.name for c in checks if not c.passed]
    print(
        f"  {len(checks) - len(failed)}/{len(checks)} targets met" + (f"; missed: {failed}" if failed else "")
    )


if __name__ == "__main__":
    main()
