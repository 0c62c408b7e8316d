"""SemFi training on a tiny synthetic manifest: loss goes down, only LoRA moves, checkpoints resume."""

from __future__ import annotations

import json

import pytest
import torch

from sfi_bench.models.semfi.tiny import save_tiny_semfi
from sfi_bench.models.semfi.train import SemFiTrainer, TrainConfig
from sfi_data.testing.toy_dataset import build_toy_dataset


@pytest.fixture(scope="module")
def setup_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("semfi_train")
    build_toy_dataset(root / "data", num_videos=2, scales=(5, 9), width=32, height=32)
    save_tiny_semfi(root / "wan", adapters=False)
    return root


def _config(root, out, **changes):
    values = dict(
        manifest=root / "data" / "clips.parquet",
        out=out,
        weights=str(root / "wan"),
        global_batch=2,
        micro_batch=1,
        lr=2e-3,
        height=16,
        width=16,
        mixed_precision="no",
        max_sequence_length=8,
        save_every=1,
        sample_every=0,
        scales=(5, 9),
        gradient_checkpointing=True,
    )
    return TrainConfig(**(values | changes))


def test_training_lowers_the_loss_and_moves_only_lora(setup_dirs, tmp_path):
    trainer = SemFiTrainer(_config(setup_dirs, tmp_path / "run", epochs=2, sample_every=4, sample_steps=1))
    trainer.setup()
    before = {n: p.detach().clone() for n, p in trainer.mol.transformer.named_parameters()}
    frozen = {n: p.detach().clone() for n, p in trainer.pipe.vae.named_parameters()}
    five = [i for i, n in enumerate(trainer.dataset.num_frames) if n == 5]
    loss_before = trainer.fixed_loss(five)
    summary = trainer.train()
    assert summary["steps"] == 4 and summary["steps_per_epoch"] == 2
    assert trainer.fixed_loss(five) < loss_before
    changed = {n for n, p in trainer.mol.transformer.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".lora_" in n for n in changed)
    adapters = {n.split(".")[-2] for n in changed}
    assert adapters == {"universal", "expert_5", "expert_9"}  # experts of untrained scales never move
    assert all(torch.equal(p, frozen[n]) for n, p in trainer.pipe.vae.named_parameters())
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 5)) and {r["scale"] for r in records} == {5, 9}
    assert all(r["lr"] == 2e-3 and r["clips_per_s"] > 0 and f"loss/{r['scale']}" in r for r in records)
    assert len(list((tmp_path / "run" / "samples").glob("step_0000004_*.mp4"))) == 1
    assert (tmp_path / "run" / "adapters" / "expert_9.safetensors").is_file()


def test_resume_continues_from_the_latest_checkpoint(setup_dirs, tmp_path):
    first = SemFiTrainer(_config(setup_dirs, tmp_path / "run", epochs=2, max_steps=1))
    first.setup()
    first.train()
    assert first.latest_checkpoint().name == "step_0000001"
    saved = {n: p.detach().clone() for n, p in first.mol.named_parameters().items()}
    second = SemFiTrainer(_config(setup_dirs, tmp_path / "run", epochs=2, max_steps=2))
    second.setup()
    assert second.step == 1
    resumed = second.mol.named_parameters()
    assert all(torch.equal(resumed[n], saved[n]) for n in saved)
    assert len(second.optimizer.state_dict()["state"]) > 0  # AdamW moments came back too
    assert second.train()["steps"] == 2
    assert second.latest_checkpoint().name == "step_0000002"


def test_batches_hold_one_scale(setup_dirs, tmp_path):
    trainer = SemFiTrainer(_config(setup_dirs, tmp_path / "run"))
    trainer.setup()
    for batch in trainer.batches(0):
        assert len({trainer.dataset.num_frames[i] for i in batch}) == 1
    mixed = [trainer.dataset[trainer.dataset.num_frames.index(n)] for n in (5, 9)]
    with pytest.raises(ValueError, match="one scale"):
        trainer.encode_batch(mixed)
