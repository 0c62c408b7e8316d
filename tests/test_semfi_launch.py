"""The shipped accelerate configs through `accelerate launch ... sfi-bench train` on 2 gloo CPU processes.

configs/accelerate/ddp_8gpu.yaml and fsdp2_8gpu.yaml are loaded as they are; only the process count (2 here,
8 there) and the port change on the command line, and ACCELERATE_USE_CPU=true in the environment puts the
processes on gloo (`--cpu` would start one process). Three runs of the same 4 steps, each from the one before:

    one    one process (in this test's process), from scratch, a checkpoint after every step: the reference
    ddp    ddp_8gpu.yaml, 2 processes: resumes one's step-1 checkpoint and trains steps 2..4
    fsdp2  fsdp2_8gpu.yaml, 2 processes: resumes ddp's step-2 checkpoint and trains steps 3..4

A run that stopped (or was killed) after step K leaves what is copied here: the folder of step K, and a
`step_N.tmp` of the next step that never got renamed. On this tiny model one process, DDP and FSDP2 compute
the same bits (2 ranks: a sum of two terms, halved), so each resumed run must end bit for bit where the
reference ended, with the same losses, and write the reference's checkpoints; none may hold a frozen weight.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

from sfi_bench.models.semfi.tiny import save_tiny_semfi
from sfi_bench.models.semfi.train import SemFiTrainer, TrainConfig
from sfi_data.testing.toy_dataset import build_toy_dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "accelerate"
ADAPTERS = ("universal", "expert_5", "expert_9")
CHECKPOINT_FILES = {f"adapters/{a}.safetensors" for a in ADAPTERS} | {"adapters/mol_config.json"}
CHECKPOINT_FILES |= {"optimizer.safetensors", "schedule.pt", "rng_0.pt", "rng_1.pt", "trainer_state.json"}
SETTINGS = dict(global_batch=2, height=16, width=16, mixed_precision="no", max_sequence_length=8)
SETTINGS |= dict(save_every=1, sample_every=0, epochs=2, max_steps=4, warmup_steps=1, lr=2e-3)
OPTIONS = ["--scale", "5", "--scale", "9"]
OPTIONS += [x for k, v in SETTINGS.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(config: str, data: Path, out: Path) -> str:
    """`accelerate launch --config_file configs/accelerate/<config>` of `sfi-bench train`; returns its stdout."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config)]
    command += ["--num_processes", "2", "--main_process_port", str(_free_port())]
    command += ["-m", "sfi_bench.cli", "train", str(data / "data" / "clips.parquet"), "--out", str(out)]
    command += ["--weights", str(data / "wan"), *OPTIONS]
    env = os.environ | {"ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    # cwd: `-m sfi_bench.cli` imports this checkout. Its own session: a hung rank dies with its launcher.
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"accelerate launch of {config} hung")
    assert proc.returncode == 0, stderr[-4000:]
    return " ".join(stdout.split())


def _stopped_after(source: Path, step: int, out: Path) -> None:
    """`out` as a run that stopped after its step-`step` checkpoint (and died renaming the next one) leaves it."""
    checkpoints = out / "checkpoints"
    checkpoints.mkdir(parents=True)
    shutil.copytree(source / "checkpoints" / f"step_{step:07d}", checkpoints / f"step_{step:07d}")
    shutil.copytree(source / "checkpoints" / f"step_{step + 1:07d}", checkpoints / f"step_{step + 1:07d}.tmp")


def _metadata(path: Path) -> dict:
    with safe_open(path, "pt") as fh:
        return fh.metadata()


def _losses(run: Path) -> dict[int, tuple[float, float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: (r["loss"], r["lr"]) for r in records}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("launch")
    build_toy_dataset(root / "data", num_videos=2, scales=(5, 9), width=32, height=32)  # 2 clips per scale
    save_tiny_semfi(root / "wan", adapters=False)
    manifest, weights = root / "data" / "clips.parquet", str(root / "wan")
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # as the launched ranks (OMP_NUM_THREADS=1): a thread split sums in another order
    try:
        one = SemFiTrainer(TrainConfig(manifest, root / "one", weights, scales=(5, 9), **SETTINGS))
        one.setup()
        one.train()
        one.close()
    finally:
        torch.set_num_threads(threads)
    _stopped_after(root / "one", 1, root / "ddp")
    output = {"root": root, "ddp": _launch("ddp_8gpu.yaml", root, root / "ddp")}
    _stopped_after(root / "ddp", 2, root / "fsdp2")
    output["fsdp2"] = _launch("fsdp2_8gpu.yaml", root, root / "fsdp2")
    return output


@pytest.mark.slow
def test_the_shipped_configs_run_as_named_and_resume(runs):
    assert "trained 4 steps on 2 processes (DDP)" in runs["ddp"]
    # FSDP2 read from the prepared model: its parameters are shards (DTensors), not a flag.
    assert "trained 4 steps on 2 processes (FSDP2)" in runs["fsdp2"]
    # Once (rank 0 speaks), and from step K, not from the unrenamed step_K+1.tmp.
    assert runs["ddp"].count("resumed from step 1") == 1
    assert runs["fsdp2"].count("resumed from step 2") == 1


@pytest.mark.slow
def test_resumed_runs_end_bit_for_bit_where_the_uninterrupted_run_ended(runs):
    root = runs["root"]
    reference = _losses(root / "one")
    for resumed, first_step in (("ddp", 2), ("fsdp2", 3)):
        for name in (*ADAPTERS, "merged_5", "merged_9"):
            want = load_file(root / "one" / "adapters" / f"{name}.safetensors")
            got = load_file(root / resumed / "adapters" / f"{name}.safetensors")
            assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want), name
        assert _losses(root / resumed) == {s: reference[s] for s in range(first_step, 5)}
    moved = load_file(root / "one" / "adapters" / "expert_9.safetensors")
    assert any(float(v.abs().sum()) > 0 for k, v in moved.items() if "lora_B" in k)  # training moved it


@pytest.mark.slow
def test_ddp_and_fsdp2_write_the_checkpoints_one_process_writes(runs):
    """Gathered from shards, FSDP2's tensors are whole: adapters and AdamW state, bit for bit."""
    root = runs["root"]
    for run, step in (("ddp", 2), ("ddp", 4), ("fsdp2", 3), ("fsdp2", 4)):
        want_dir, got_dir = (root / r / "checkpoints" / f"step_{step:07d}" for r in ("one", run))
        for name in ADAPTERS:
            want, got = (load_file(d / "adapters" / f"{name}.safetensors") for d in (want_dir, got_dir))
            assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want), (run, step)
        want, got = (load_file(d / "optimizer.safetensors") for d in (want_dir, got_dir))
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want), (run, step)
        assert _metadata(want_dir / "optimizer.safetensors") == _metadata(got_dir / "optimizer.safetensors")


@pytest.mark.slow
def test_a_checkpoint_holds_the_lora_its_optimizer_state_and_nothing_frozen(runs):
    root = runs["root"]
    frozen = load_file(root / "wan" / "transformer" / "diffusion_pytorch_model.safetensors")
    for run in ("ddp", "fsdp2"):
        folder = root / run / "checkpoints" / "step_0000004"
        files = {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
        assert set(files) == CHECKPOINT_FILES, run
        lora = [
            (k, v) for a in ADAPTERS for k, v in load_file(folder / "adapters" / f"{a}.safetensors").items()
        ]
        assert lora and all(".lora_A." in k or ".lora_B." in k for k, _ in lora)
        lora_bytes = sum(v.numel() * v.element_size() for _, v in lora)
        optimizer = load_file(folder / "optimizer.safetensors")
        names = {k.rsplit("/", 1)[0] for k in optimizer}
        assert names and all(".lora_A." in n or ".lora_B." in n for n in names)
        assert {k.rsplit("/", 1)[1] for k in optimizer} == {"step", "exp_avg", "exp_avg_sq"}
        # The LoRA once, AdamW's two moments of it, a few KiB of RNG and schedule: no frozen weight on top.
        assert sum(files.values()) < 4 * lora_bytes, run
        stored = [v for _, v in lora] + list(optimizer.values())
        assert not any(v.shape == w.shape and torch.equal(v, w) for v in stored for w in frozen.values())


def test_the_32gpu_config_shards_as_the_8gpu_one():
    """Only the topology differs between fsdp2_8gpu.yaml (tested above) and fsdp2_32gpu.yaml."""
    one, four = (yaml.safe_load((CONFIGS / n).read_text()) for n in ("fsdp2_8gpu.yaml", "fsdp2_32gpu.yaml"))
    topology = {"num_machines", "num_processes", "machine_rank", "main_process_ip", "main_process_port"}
    assert {k: v for k, v in one.items() if k not in topology} == {
        k: v for k, v in four.items() if k not in topology
    }
    assert (four["num_machines"], four["num_processes"]) == (4, 32)
    assert one["fsdp_config"]["fsdp_version"] == 2 and one["mixed_precision"] == "no"
