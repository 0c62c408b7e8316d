"""`sfi-bench weights --fetch` against a loopback server: Hub and URL layouts, digests, resume and failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from weights_server import loopback_world, payload, sha

from sfi_core import weights as weights_module
from sfi_core.fetch import FetchError, RetryPolicy, fetch
from sfi_core.weights import WEIGHTS, WeightsCorruptError, resolve
from sfi_core.weights.lock import LOCK_NAME, WeightsLock

FAST = RetryPolicy(attempts=3, timeout_s=5.0, backoff_s=0.05)


@pytest.fixture
def world(tmp_path, monkeypatch):
    yield from loopback_world(tmp_path, monkeypatch)


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_fetch_puts_each_layout_in_place_checked_and_recorded(world):
    bodies, home = world["bodies"], world["home"]
    done = {
        name: fetch(name, policy=FAST, progress=False)
        for name in ("hub-lfs", "url-prefix", "url-full", "url-plain")
    }
    assert {d.action for d in done.values()} == {"fetched"}
    for name, result in done.items():
        assert result.path.read_bytes() == bodies[name] and resolve(name) == result.path
    assert done["hub-lfs"].path.is_symlink() and done["hub-lfs"].path.resolve().name == sha(bodies["hub-lfs"])
    assert done["url-plain"].path == home / "torch" / "hub" / "checkpoints" / "head.pth"
    lock = WeightsLock.load(home / "cache" / "sfi")
    assert lock.digests["url-plain"]["sha256"] == sha(bodies["url-plain"])
    assert not [p for p in files_under(home) if p.name.endswith((".part", ".incomplete"))]
    assert (
        fetch("url-plain", policy=FAST, progress=False).action == "present"
    )  # verified now, not fetched again
    assert not files_under(world["tmp"]) - files_under(home)  # nothing written outside the caches


def test_fetch_into_a_weights_dir_keeps_everything_there(world):
    weights_dir = world["tmp"] / "w"
    for name in ("hub-lfs", "url-prefix"):
        fetch(name, weights_dir, policy=FAST, progress=False)
    assert resolve("hub-lfs", weights_dir) == weights_dir / "hub-lfs" / "model.safetensors"
    assert (weights_dir / "url-prefix" / WEIGHTS["url-prefix"].filename).is_file()
    assert (weights_dir / LOCK_NAME).is_file()
    assert not (world["home"] / "torch").exists() and not (world["home"] / "hf" / "hub").exists()


def test_url_digest_mismatch_leaves_no_file(world):
    path = "/" + WEIGHTS["url-full"].url.split("://", 1)[1]
    world["served"].files[path] = payload(99)
    with pytest.raises(FetchError, match="does not match") as info:
        fetch("url-full", policy=FAST, progress=False)
    assert "\n" not in str(info.value) and "url-full" in str(info.value)
    assert not files_under(world["home"] / "torch")


def test_hub_digest_mismatch_leaves_no_file(world):
    world["served"].etags["/org/lfs-model/resolve/main/model.safetensors"] = sha(b"another file")
    with pytest.raises(FetchError, match="sha256") as info:
        fetch("hub-lfs", policy=FAST, progress=False)
    assert "\n" not in str(info.value)
    assert not [p for p in files_under(world["home"] / "hf") if p.stat().st_size > 1000]


@pytest.mark.parametrize("name", ["url-prefix", "hub-lfs"])
def test_truncated_transfer_resumes_where_it_stopped(world, name, monkeypatch):
    served = world["served"]
    path = (
        "/org/lfs-model/resolve/main/model.safetensors"
        if name == "hub-lfs"
        else "/" + WEIGHTS[name].url.split("://", 1)[1]
    )
    served.faults[path] = ["truncate"]
    # huggingface_hub writes (and so resumes) whole chunks of 10 MB; small ones let a small file resume too.
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 16 * 1024)
    result = fetch(name, policy=FAST, progress=False)
    assert result.path.read_bytes() == world["bodies"][name]
    ranges = [r for method, p, r in served.log if method == "GET" and p == path]
    assert ranges == ["", f"bytes={len(world['bodies'][name]) // 2}-"]  # the second GET resumes, not restarts


@pytest.mark.parametrize("name", ["url-plain", "hub-lfs"])
def test_a_500_then_success(world, name):
    served = world["served"]
    path = (
        "/org/lfs-model/resolve/main/model.safetensors"
        if name == "hub-lfs"
        else "/" + WEIGHTS[name].url.split("://", 1)[1]
    )
    served.faults[path] = ["500"]
    assert fetch(name, policy=FAST, progress=False).path.read_bytes() == world["bodies"][name]


def test_500s_give_up_after_bounded_tries(world):
    path = "/" + WEIGHTS["url-plain"].url.split("://", 1)[1]
    world["served"].faults[path] = ["500"] * 10
    with pytest.raises(FetchError, match="gave up after 3 tries") as info:
        fetch("url-plain", policy=FAST, progress=False)
    assert "\n" not in str(info.value)
    assert sum(1 for m, p, _ in world["served"].log if m == "GET" and p == path) == 3


@pytest.mark.parametrize("name", ["url-plain", "hub-lfs"])
def test_404_is_one_line(world, name):
    world["served"].files.clear()
    with pytest.raises(FetchError, match="404") as info:
        fetch(name, policy=FAST, progress=False)
    assert "\n" not in str(info.value)
    assert not [
        p for p in files_under(world["tmp"]) if p.stat().st_size > 100 or world["home"] not in p.parents
    ]


@pytest.mark.parametrize("name", ["url-plain", "hub-lfs"])
def test_connection_refused_is_one_line_and_quick(world, name, monkeypatch):
    import socket
    import time

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    monkeypatch.setenv(weights_module.URL_MIRROR_ENV, dead)
    start = time.monotonic()
    with pytest.raises(FetchError, match="(?i)connect") as info:
        fetch(name, policy=FAST, progress=False)
    assert "\n" not in str(info.value) and time.monotonic() - start < 5
    assert not [
        p for p in files_under(world["tmp"]) if p.stat().st_size > 100 or world["home"] not in p.parents
    ]


def test_corrupt_file_fails_the_loader_in_one_line_and_force_repairs_it(world):
    target = fetch("url-prefix", policy=FAST, progress=False).path
    target.write_bytes(target.read_bytes()[:1000])  # truncated, as a killed copy leaves it
    with pytest.raises(WeightsCorruptError) as info:
        resolve("url-prefix")
    message = str(info.value)
    assert "\n" not in message and str(target) in message and "1000 bytes" in message
    assert "sfi-bench weights --fetch url-prefix --force" in message
    fetch("url-prefix", force=True, policy=FAST, progress=False)
    assert resolve("url-prefix").read_bytes() == world["bodies"]["url-prefix"]


def test_recorded_digest_catches_a_changed_file_without_published_digest(world):
    target = fetch("url-plain", policy=FAST, progress=False).path
    target.write_bytes(payload(7))  # same size, other bytes
    with pytest.raises(WeightsCorruptError, match="recorded by its first verified fetch"):
        resolve("url-plain")


def test_unchanged_file_is_not_hashed_again(world, monkeypatch):
    from sfi_core.weights import lock as weights_lock

    target = fetch("url-prefix", policy=FAST, progress=False).path
    calls = []
    real = weights_lock.sha256_file
    monkeypatch.setattr(weights_lock, "sha256_file", lambda p: calls.append(p) or real(p))
    resolve("url-prefix")
    resolve("url-prefix")
    assert calls == []  # the fetch cached (size, mtime_ns) -> digest
    os.utime(target, ns=(0, 0))
    resolve("url-prefix")
    assert calls == [target]  # a touched file is hashed again, once
    resolve("url-prefix")
    assert calls == [target]


def test_named_folder_is_fetched_whole_recorded_and_checked_file_by_file(world):
    from sfi_core.weights import resolve_folder

    result = fetch("big-folder", policy=FAST, progress=False)
    folder = resolve_folder("big-folder")
    assert result.path == folder / "model_index.json"
    weights_file = folder / "transformer" / "diffusion_pytorch_model.safetensors"
    assert weights_file.read_bytes() == payload(50, 4096)
    recorded_files = WeightsLock.load(world["home"] / "cache" / "sfi").digests["big-folder"]["files"]
    assert set(recorded_files) == {"model_index.json", "transformer/diffusion_pytorch_model.safetensors"}
    blob = weights_file.resolve()
    blob.chmod(0o644)
    blob.write_bytes(payload(51, 4096))  # same size, other bytes, as a bad copy would leave it
    with pytest.raises(WeightsCorruptError, match="diffusion_pytorch_model.safetensors") as info:
        resolve_folder("big-folder")
    assert "\n" not in str(info.value) and "--fetch big-folder --force" in str(info.value)


def test_entries_sfi_does_not_download_say_how_to_get_them(world, monkeypatch):
    from dataclasses import replace

    assert fetch("pkg-file", policy=FAST, progress=False).action == "present"  # ships with its package
    WEIGHTS["pkg-file"] = replace(WEIGHTS["pkg-file"], source="package:no_such_module_sfi/__init__.py")
    with pytest.raises(FetchError, match=r"^pkg-file: not downloaded by sfi: pip install no_such_module_sfi"):
        fetch("pkg-file", policy=FAST, progress=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(FetchError, match="^hub-lfs: HF_HUB_OFFLINE is set"):
        fetch("hub-lfs", policy=FAST, progress=False)


def test_an_interrupted_folder_fetch_is_completed_without_fetching_done_files_again(world):
    result = fetch("big-folder", policy=FAST, progress=False)
    (world["home"] / "cache" / "sfi" / LOCK_NAME).unlink()  # as if the run had stopped before recording
    weights_file = result.path.parent / "transformer" / "diffusion_pytorch_model.safetensors"
    weights_file.resolve().unlink()
    weights_file.unlink()
    assert fetch("big-folder", policy=FAST, progress=False).action == "fetched"
    gets = [p.rsplit("/", 1)[-1] for m, p, _ in world["served"].log if m == "GET" and "/resolve/" in p]
    assert gets.count("model_index.json") == 1 and gets.count("diffusion_pytorch_model.safetensors") == 2
    assert weights_file.read_bytes() == payload(50, 4096)
