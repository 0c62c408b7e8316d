"""Captioning against the loopback fake vLLM server, faults included: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sfi_core.manifest_table import merge_parts
from sfi_core.schemas import CAPTIONS
from sfi_data.captioning import (
    CAPTIONS_MANIFEST,
    PARTS_DIR,
    CaptionConfig,
    clip_request,
    load_prompt,
    run_captions,
    sample_indices,
)
from sfi_data.testing.fake_vllm import FAKE_MODEL, FakeVLLMServer, fake_caption_for
from sfi_data.testing.toy_dataset import build_toy_dataset


@pytest.fixture(scope="module")
def toy_master(tmp_path_factory):
    root = tmp_path_factory.mktemp("caption_toy")
    build_toy_dataset(root, num_videos=4, scales=(5, 9, 17), width=64, height=48)
    return root


@pytest.fixture()
def root(toy_master, tmp_path):
    target = tmp_path / "ds"
    shutil.copytree(toy_master, target)
    return target


@pytest.fixture()
def server():
    with FakeVLLMServer() as srv:
        yield srv


def config_for(*servers, **changes) -> CaptionConfig:
    base = dict(
        api_bases=[s.url for s in servers],
        model=FAKE_MODEL,
        frames=4,
        max_side=32,
        concurrency=4,
        timeout_s=5.0,
        max_attempts=6,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        batch_size=3,
    )
    return CaptionConfig(**(base | changes))


def captions(root: Path) -> list[dict]:
    return pq.read_table(root / CAPTIONS_MANIFEST).to_pylist()


def clip_rows(root: Path) -> list[dict]:
    return pq.read_table(root / "clips.parquet").to_pylist()


def assert_exactly_once_and_own_caption(root: Path, config: CaptionConfig) -> None:
    """Every clip has exactly one row, ok, whose caption is the one its own frames earn."""
    rows = captions(root)
    clips = {row["clip_id"]: row for row in clip_rows(root)}
    assert sorted(r["clip_id"] for r in rows) == sorted(clips)
    prompt = load_prompt(config.prompt)
    for row in rows:
        assert row["status"] == "ok", row["reason"]
        assert row["caption"] == fake_caption_for(clip_request(root, clips[row["clip_id"]], prompt, config))
    # The manifest is the merge of the part files the driver wrote, nothing else.
    assert merge_parts(root / PARTS_DIR, CAPTIONS, "clip_id", [r["clip_id"] for r in rows]) == rows


def test_sample_indices_keep_the_ends():
    assert sample_indices(81, 8) == [0, 11, 23, 34, 46, 57, 69, 80]
    assert sample_indices(5, 8) == [0, 1, 2, 3, 4]
    assert sample_indices(9, 2) == [0, 8]
    with pytest.raises(ValueError, match="at least 2"):
        sample_indices(9, 1)


def test_request_has_labelled_jpeg_frames_and_versioned_prompt(root):
    config = config_for(FakeVLLMServer(), frames=3, max_side=40)
    body = clip_request(root, clip_rows(root)[2], load_prompt(config.prompt), config)
    parts = body["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 3
    assert all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images)
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts[0] == "Frame 1 (first frame):" and texts[-2] == "Frame 3 (last frame):"
    assert "17 frames" in texts[-1] and "between the" in texts[-1]
    assert load_prompt(config.prompt).version == "sfi-caption-v1"


def test_captions_with_metadata(root, server):
    config = config_for(server)
    summary = run_captions(root, config)
    assert (summary.total, summary.ok, summary.failed) == (12, 12, 0)
    assert pq.read_table(root / CAPTIONS_MANIFEST).schema.equals(CAPTIONS, check_metadata=False)
    assert_exactly_once_and_own_caption(root, config)
    for row in captions(root):
        assert row["model"] == FAKE_MODEL and row["prompt_version"] == "sfi-caption-v1"
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"]
        assert row["latency_s"] > 0 and row["attempts"] == 1 and row["api_base"] == server.url
        assert row["frames_sent"] == min(4, row["num_frames"])
    assert server.stats.outcomes["ok"] == 12
    # A rerun asks the server nothing.
    again = run_captions(root, config)
    assert (again.skipped, again.ok) == (12, 0) and server.stats.requests == 12


def test_500_429_malformed_and_dropped_connections_are_retried(root, server):
    server.inject(error_500=3, rate_limit_429=2, malformed=2, drop=2)
    config = config_for(server)
    summary = run_captions(root, config)
    assert (summary.ok, summary.failed) == (12, 0)
    assert server.stats.outcomes["500"] == 3 and server.stats.outcomes["429"] == 2
    assert server.stats.outcomes["malformed"] == 2 and server.stats.outcomes["drop"] == 2
    assert sum(row["attempts"] for row in captions(root)) == 12 + 9
    assert_exactly_once_and_own_caption(root, config)


def test_slow_reply_times_out_and_is_retried(root, server):
    server.inject(slow=2, slow_s=3.0)
    config = config_for(server, timeout_s=0.4)
    start = time.perf_counter()
    summary = run_captions(root, config)
    assert (summary.ok, summary.failed) == (12, 0)
    assert time.perf_counter() - start < 3.0  # did not wait for the slow replies
    assert sorted(r["attempts"] for r in captions(root))[-2:] == [2, 2]
    assert_exactly_once_and_own_caption(root, config)


def test_failures_keep_their_reason_and_a_rerun_retries_only_them(root, server):
    server.inject(error_500=4)
    config = config_for(server, concurrency=1, max_attempts=2)
    summary = run_captions(root, config)
    assert (summary.ok, summary.failed) == (10, 2)
    failed = [row for row in captions(root) if row["status"] == "error"]
    assert len(failed) == 2
    for row in failed:
        assert "HTTP 500" in row["reason"] and "gave up after 2 attempts" in row["reason"]
        assert row["attempts"] == 2 and row["caption"] is None and row["reason_code"] == "http_500"
    assert summary.reasons == {"http_500": 2} and "HTTP 500" in summary.examples["http_500"]
    requests_before = server.stats.requests
    again = run_captions(root, config)
    assert (again.skipped, again.ok, again.failed) == (10, 2, 0)
    assert server.stats.requests - requests_before == 2
    assert_exactly_once_and_own_caption(root, config)


def test_server_dies_mid_run_and_comes_back(root, server):
    server.inject(latency_s=0.03)
    config = config_for(server, concurrency=3, max_attempts=8, backoff_base_s=0.1, backoff_max_s=0.4)

    def kill_and_restart() -> None:
        while server.stats.outcomes["ok"] < 4:
            time.sleep(0.005)
        server.stop()
        time.sleep(0.5)
        server.start()

    chaos = threading.Thread(target=kill_and_restart)
    chaos.start()
    summary = run_captions(root, config)
    chaos.join()
    assert (summary.ok, summary.failed) == (12, 0)
    assert max(row["attempts"] for row in captions(root)) > 1  # some requests hit the dead server
    assert_exactly_once_and_own_caption(root, config)


def test_server_gone_for_good_then_resume(root, server):
    server.inject(latency_s=0.02)
    config = config_for(server, concurrency=2, max_attempts=2, backoff_base_s=0.01)

    def kill() -> None:
        while server.stats.outcomes["ok"] < 5:
            time.sleep(0.005)
        server.stop()

    chaos = threading.Thread(target=kill)
    chaos.start()
    first = run_captions(root, config)
    chaos.join()
    assert first.ok >= 5 and first.failed == 12 - first.ok
    reasons = [row["reason"] for row in captions(root) if row["status"] == "error"]
    assert reasons and all("connection failed" in r or "timed out" in r for r in reasons)
    server.inject(latency_s=0.0)
    server.start()
    second = run_captions(root, config)
    assert second.skipped == first.ok and second.ok == 12 - first.ok
    assert_exactly_once_and_own_caption(root, config)


def test_killed_process_resumes_without_loss_or_duplicates(root, server):
    server.inject(latency_s=0.1)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from sfi_data.captioning import CaptionConfig, run_captions
        run_captions(Path({str(root)!r}), CaptionConfig(api_bases=[{server.url!r}], model={FAKE_MODEL!r},
                     frames=4, max_side=32, concurrency=1, batch_size=1))
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[1])
    deadline = time.monotonic() + 60
    while len(list((root / PARTS_DIR).glob("part-*.parquet"))) < 3:
        assert time.monotonic() < deadline, "the captioning process wrote no part files"
        assert proc.poll() is None, "the captioning process ended early"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (root / CAPTIONS_MANIFEST).exists()
    server.inject(latency_s=0.0)
    config = config_for(server)
    resumed = run_captions(root, config)
    assert resumed.skipped >= 3 and resumed.skipped + resumed.ok == 12
    assert_exactly_once_and_own_caption(root, config)


def test_round_robin_and_failover(root):
    with FakeVLLMServer() as one, FakeVLLMServer() as two:
        config = config_for(one, two)
        run_captions(root, config)
        assert one.stats.outcomes["ok"] == 6 and two.stats.outcomes["ok"] == 6
        two.stop()
        run_captions(root, config_for(one, two, overwrite=True))
        assert_exactly_once_and_own_caption(root, config)
        assert {row["api_base"] for row in captions(root)} == {one.url}


def test_api_key_from_environment(root, monkeypatch):
    with FakeVLLMServer(api_key="s3cret") as server:
        monkeypatch.delenv("SFI_CAPTION_API_KEY", raising=False)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        summary = run_captions(root, config_for(server), limit=2)
        assert summary.failed == 2
        row = captions(root)[0]
        assert "HTTP 401" in row["reason"] and row["attempts"] == 1  # not worth retrying
        monkeypatch.setenv("SFI_CAPTION_API_KEY", "s3cret")
        assert run_captions(root, config_for(server), limit=2).ok == 2


def test_too_many_images_says_how_to_start_vllm(root):
    with FakeVLLMServer(max_images=3) as server:
        run_captions(root, config_for(server, frames=8), limit=1)
    reason = captions(root)[0]["reason"]
    assert "HTTP 400" in reason and "--limit-mm-per-prompt" in reason


def test_unreadable_clip_is_recorded(root, server):
    first = clip_rows(root)[0]
    (root / first["clip_path"]).write_bytes(b"not a video")
    summary = run_captions(root, config_for(server))
    assert (summary.ok, summary.failed) == (11, 1)
    row = next(r for r in captions(root) if r["clip_id"] == first["clip_id"])
    assert row["status"] == "error" and row["reason"].startswith("could not read frames")


def test_cli(root, server):
    import typer
    from click.testing import CliRunner

    from sfi_data.app import app
    from sfi_data.commands import caption as _caption  # noqa: F401 - registers the command

    args = [
        "caption",
        "--out",
        str(root),
        "--api-base",
        server.url,
        "--model",
        FAKE_MODEL,
        "--frames",
        "3",
        "--max-side",
        "32",
        "--scales",
        "5,9",
    ]
    outcome = CliRunner().invoke(typer.main.get_group(app), args)
    assert outcome.exit_code == 0, outcome.output
    assert len(captions(root)) == 8


def test_caption_reads_the_reader_cut_recorded_and_refuses_changed_settings(root, server):
    from sfi_core.driver import SettingsChangedError, record_settings, recorded_settings

    record_settings(root, "cut", {"reader": "decord", "crf": 18})
    config = config_for(server)
    assert run_captions(root, config, limit=3).ok == 3
    assert recorded_settings(root, "caption")["reader"] == "decord"
    with pytest.raises(SettingsChangedError, match="max_side: 32 -> 48"):
        run_captions(root, config_for(server, max_side=48), limit=3)
    # Servers, concurrency and batches only change speed: a rerun with others is no change.
    assert run_captions(root, config_for(server, concurrency=1, batch_size=5)).skipped == 3
    assert run_captions(root, config_for(server, max_side=48, overwrite=True)).ok == 12


def test_caption_before_cut_or_on_the_wrong_manifest_says_what_to_do(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="run `sfi-data cut --out"):
        run_captions(tmp_path / "empty", config_for(FakeVLLMServer()))
    (root / "videos.parquet").replace(root / "clips.parquet")
    with pytest.raises(ValueError, match="not a clips manifest"):
        run_captions(root, config_for(FakeVLLMServer()))


def test_cli_failures_name_their_code_and_an_example(root, server):
    import typer
    from click.testing import CliRunner

    from sfi_data.app import app
    from sfi_data.commands import caption as _caption  # noqa: F401 - registers the command

    server.inject(error_500=2)
    args = f"caption --out {root} --api-base {server.url} --model {FAKE_MODEL} --frames 3 --max-side 32"
    outcome = CliRunner().invoke(
        typer.main.get_group(app), [*args.split(), "--limit", "2", "--max-attempts", "1"]
    )
    assert outcome.exit_code == 1, outcome.output  # nothing captioned at all
    assert "2 failed: http_500 (e.g. HTTP 500 from" in " ".join(outcome.output.split())
    assert "Traceback" not in outcome.output


def test_captions_made_before_the_stage_are_kept(root, server):
    """A captions.parquet from the old layout (parts merged away, no reason_code) is adopted, not redone."""
    run_captions(root, config_for(server), limit=5)
    shutil.rmtree(root / PARTS_DIR)
    old = pq.read_table(root / CAPTIONS_MANIFEST).drop_columns(["reason_code"]).to_pylist()
    old[0]["model"] = "another-model"  # made with another model: captioned again
    pq.write_table(pa.Table.from_pylist(old), root / CAPTIONS_MANIFEST)
    requests = server.stats.requests
    summary = run_captions(root, config_for(server))
    assert (summary.skipped, summary.ok) == (4, 8) and server.stats.requests - requests == 8
    assert_exactly_once_and_own_caption(root, config_for(server))
