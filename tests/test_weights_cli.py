"""`sfi-bench weights`: packages first, fetch --all, every printed command runs as printed, the script route."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner
from weights_server import loopback_world, url_path

from sfi_bench.commands.weights import select, weights
from sfi_core.weights import WEIGHTS
from sfi_core.weights import table as weights_table

FETCHABLE = ["hub-lfs", "url-prefix", "url-full", "url-plain"]


@pytest.fixture
def world(tmp_path, monkeypatch):
    yield from loopback_world(tmp_path, monkeypatch)


def invoke(*args: str):
    cli = typer.Typer()
    cli.command("weights")(weights)
    cli.command("version")(lambda: None)  # two commands, so `weights` is a subcommand as in sfi-bench
    return CliRunner().invoke(cli, ["weights", *map(str, args)])


def statuses(output: str) -> dict[str, str]:
    """Entry name -> status, read from the Rich table rows."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 3 and cells[1] in WEIGHTS:
            found[cells[1]] = cells[2]
    return found


def printed_commands(output: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index("# Or by hand, one command per line:") + 1
    return lines[start : lines.index("", start) if "" in lines[start:] else len(lines)]


def fresh_shell_env(world: dict) -> dict[str, str]:
    """What a new login shell would have: no venv on PATH, no HF_HOME; the Hub endpoint points at the server."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(world["home"]), "HF_ENDPOINT": world["server"].url}


def test_fetch_all_puts_every_file_in_place_and_the_table_shows_them_verified(world):
    result = invoke("--fetch", "--all")
    assert result.exit_code == 0, result.output
    assert re.findall(r"(fetched|present|recorded): ([\w-]+) -> ", result.output) == [
        ("fetched", n) for n in FETCHABLE
    ]
    shown = statuses(invoke().output)
    assert {name: shown[name] for name in [*FETCHABLE, "pkg-file"]} == dict.fromkeys(
        [*FETCHABLE, "pkg-file"], "verified"
    )
    assert shown["big-folder"] == "missing"  # named-only: --all leaves it
    assert not any(p == url_path("big-folder") for _, p, _ in world["served"].log)


@pytest.mark.parametrize("into", ["caches", "weights-dir"])
def test_every_printed_command_runs_as_printed_in_a_fresh_shell(world, into):
    extra = ["--weights-dir", world["tmp"] / "w"] if into == "weights-dir" else []
    before = invoke(*extra)
    commands = printed_commands(before.output)
    assert len(commands) == 5 and all(len(c) < 400 and "\n" not in c for c in commands)
    assert not any(c.startswith(("huggingface-cli", "curl")) for c in commands)  # hf CLI; mkdir before curl
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], env=fresh_shell_env(world), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr[-2000:])
    after = invoke(*extra).output
    shown = statuses(after)
    # The folder too (the Hub's LFS digests); a file without a published digest waits for its record.
    assert shown == dict.fromkeys(WEIGHTS, "verified") | {"url-plain": "present, unverified"}
    assert "sfi-bench weights --fetch url-plain" in after
    assert invoke("--fetch", "url-plain", *extra).output.startswith("recorded: url-plain")
    assert statuses(invoke(*extra).output)["url-plain"] == "verified"
    if into == "weights-dir":  # all of it in the named folder, none in the caches
        assert not (world["home"] / "torch").exists() and not (world["home"] / "hf" / "hub").exists()


def test_script_fetches_everything_into_a_folder_that_then_verifies(world):
    script, folder = world["tmp"] / "get-weights.sh", world["tmp"] / "carried"
    assert invoke("--script", script).exit_code == 0
    env = fresh_shell_env(world) | {"HF": str(Path(sys.executable).parent / "hf")}
    done = subprocess.run(
        ["bash", str(script), str(folder)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (folder / "big-folder").exists()  # commented out: named-only
    assert (folder / "hub-lfs" / "model.safetensors").read_bytes() == world["bodies"]["hub-lfs"]
    served_before = len(world["served"].log)
    record = invoke("--fetch", "--all", "--weights-dir", folder)
    assert record.exit_code == 0, record.output
    assert len(world["served"].log) == served_before  # everything was there: nothing downloaded again
    assert "recorded: url-plain" in record.output and "present: url-prefix" in record.output
    shown = statuses(invoke("--weights-dir", folder).output)
    assert {shown[name] for name in FETCHABLE} == {"verified"}


def test_missing_packages_come_first_with_the_pip_line(world, monkeypatch):
    monkeypatch.setitem(weights_table.PACKAGE_PIP, "no_such_module_sfi", "pip install no-such-package==1.0")
    WEIGHTS["url-plain"] = replace(WEIGHTS["url-plain"], packages=("no_such_module_sfi",))
    output = invoke().output
    assert output.index("pip install no-such-package==1.0") < output.index("sfi weights")


def test_failures_are_one_line_each_and_the_rest_still_fetched(world):
    world["served"].faults[url_path("url-plain")] = ["404"]
    result = invoke("--fetch", "url-plain", "url-full")
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "url-plain" not in statuses(result.output).get("url-full", "")
    assert "HTTP 404" in errors[0]
    assert statuses(result.output)["url-full"] == "verified"


def test_corrupt_file_is_shown_with_the_fix(world):
    assert invoke("--fetch", "url-full").exit_code == 0
    target = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints" / "full.pt"
    target.write_bytes(target.read_bytes()[:-1])
    output = invoke().output
    assert statuses(output)["url-full"] == "corrupt"
    assert "sfi-bench weights --fetch url-full --force" in output


def test_for_a_model_holds_back_its_named_only_folder(world):
    WEIGHTS["big-folder"] = replace(WEIGHTS["big-folder"], users=("bigmodel",))
    WEIGHTS["url-plain"] = replace(WEIGHTS["url-plain"], users=("bigmodel",))
    result = invoke("--fetch", "--for", "bigmodel")
    assert result.exit_code == 0, result.output
    assert "held back big-folder" in result.output and "fetched: url-plain" in result.output
    assert not any(p == url_path("big-folder") for _, p, _ in world["served"].log)


def test_selection_by_metric_model_and_name():
    assert {"alexnet", "lpips-alex-linear"} <= set(select(["lpips"], all_=False, for_=True))
    assert select(["film"], all_=False, for_=True) == ["film_net_fp32"]
    assert not any(
        WEIGHTS[n].named_only or not WEIGHTS[n].fetchable for n in select([], all_=True, for_=False)
    )
    assert "wan2.1-i2v-14b-480p" in select(["semfi"], all_=False, for_=True)
    with pytest.raises(ValueError, match="Did you mean alexnet"):
        select(["alexnt"], all_=False, for_=False)
    with pytest.raises(ValueError, match="Did you mean lpips"):
        select(["lpipz"], all_=False, for_=True)


def test_one_present_wan_layout_serves_and_the_other_is_not_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    official = tmp_path / "dir" / "wan2.1-i2v-14b-480p-official"
    official.mkdir(parents=True)
    (official / "Wan2.1_VAE.pth").write_bytes(b"vae")
    result = invoke("--weights-dir", tmp_path / "dir")
    shown = statuses(result.output)
    assert shown["wan2.1-i2v-14b-480p-official"].startswith("present")
    assert (
        shown["wan2.1-i2v-14b-480p"] == "missing"
        and "wan2.1-i2v-14b-480p-official is present" in result.output
    )
    commands = printed_commands(result.output)
    assert not any("Wan2.1-I2V-14B-480P" in line for line in commands)  # neither layout is fetched again
    assert any("Wan2.1-FLF2V-14B-720P-diffusers" in line for line in commands)  # FLF2V: both missing
