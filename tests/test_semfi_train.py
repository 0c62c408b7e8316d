"""SemFi training on a tiny synthetic manifest: loss goes down, only LoRA moves, checkpoints resume exactly."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from sfi_bench.models.semfi.distributed import rank_share
from sfi_bench.models.semfi.flow import warmup_cosine
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
        warmup_steps=1,
        height=16,
        width=16,
        mixed_precision="no",
        max_sequence_length=8,
        save_every=1,
        sample_every=0,
        scales=(5, 9, 17),  # no 17-frame clips: expert_17 must never move
        gradient_checkpointing=True,
    )
    return TrainConfig(**(values | changes))


def _lora(trainer):
    return {n: p.detach().clone() for n, p in trainer.mol.named_parameters().items()}


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
    assert {n.split(".")[-2] for n in changed} == {"universal", "expert_5", "expert_9"}
    untrained = [n for n in before if ".expert_17." in n]
    assert untrained and all(
        torch.equal(trainer.mol.transformer.get_parameter(n), before[n]) for n in untrained
    )
    assert all(torch.equal(p, frozen[n]) for n, p in trainer.pipe.vae.named_parameters())
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 5)) and {r["scale"] for r in records} == {5, 9}
    # Warm-up then cosine over the 4 steps of the run.
    expected = [2e-3 * warmup_cosine(s, 1, 4) for s in range(4)]
    assert [r["lr"] for r in records] == pytest.approx(expected, rel=1e-9)
    assert records[0]["lr"] > records[-1]["lr"] > 0
    assert all(r["clips_per_s"] > 0 and f"loss/{r['scale']}" in r for r in records)
    assert len(list((tmp_path / "run" / "samples").glob("step_0000004_*.mp4"))) == 1
    assert (tmp_path / "run" / "adapters" / "expert_9.safetensors").is_file()


def test_a_resumed_run_equals_an_uninterrupted_one(setup_dirs, tmp_path):
    straight = SemFiTrainer(
        _config(setup_dirs, tmp_path / "straight", epochs=2, max_steps=3, keep_checkpoints=2)
    )
    straight.setup()
    straight.train()
    assert [p.name for p in straight.checkpoints()] == ["step_0000002", "step_0000003"]
    first = SemFiTrainer(_config(setup_dirs, tmp_path / "resumed", epochs=2, max_steps=2))
    first.setup()
    first.train()
    assert first.latest_checkpoint().name == "step_0000002"
    # A crash between writing the state file and the rename leaves step_N.tmp complete-looking: not resumed.
    crashed = first.checkpoint_dir() / "step_0000003.tmp"
    shutil.copytree(first.latest_checkpoint(), crashed)
    second = SemFiTrainer(_config(setup_dirs, tmp_path / "resumed", epochs=2, max_steps=3))
    second.setup()
    assert second.step == 2
    assert second.scheduler.state_dict() == first.scheduler.state_dict()
    assert len(second.optimizer.state_dict()["state"]) > 0  # AdamW moments came back too
    assert second.train()["steps"] == 3
    a, b = _lora(straight), _lora(second)
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    # Checkpoints hold the adapters, AdamW state, schedule and RNG, never the frozen base weights.
    saved = {p.name for p in second.latest_checkpoint().iterdir()}
    assert saved == {"adapters", "optimizer.safetensors", "schedule.pt", "rng_0.pt", "trainer_state.json"}
    assert not any(name.startswith("model") for name in saved)


def test_batches_hold_one_scale(setup_dirs, tmp_path):
    trainer = SemFiTrainer(_config(setup_dirs, tmp_path / "run"))
    trainer.setup()
    for batch in trainer.batches(0):
        assert len({trainer.dataset.num_frames[i] for i in batch}) == 1
    five, nine = (trainer.dataset.num_frames.index(n) for n in (5, 9))
    with pytest.raises(ValueError, match="one scale"):
        trainer.encode([five, nine])


def test_every_rank_gets_the_same_number_of_micro_batches():
    for batch, world, micro in ((1, 2, 1), (3, 2, 1), (5, 4, 2), (32, 8, 1), (7, 8, 3)):
        shares = [rank_share(batch, world, rank, micro) for rank in range(world)]
        assert len({len(s) for s in shares}) == 1  # one synchronised backward per rank per step
        real = sorted(p for s in shares for chunk in s for p in chunk if p is not None)
        assert real == list(range(batch))


def test_cached_latents_give_the_same_loss_without_decoding(setup_dirs, tmp_path, monkeypatch):
    plain = SemFiTrainer(_config(setup_dirs, tmp_path / "plain"))
    plain.setup()
    cached = SemFiTrainer(_config(setup_dirs, tmp_path / "cached", cache=tmp_path / "cache"))
    cached.setup()
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == len(cached.dataset)
    indices = [i for i, n in enumerate(cached.dataset.num_frames) if n == 9]
    expected = plain.fixed_loss(indices)
    import sfi_core.dataset

    def no_decoding(*args, **kwargs):
        raise AssertionError("an epoch over the cache decoded a video")

    monkeypatch.setattr(sfi_core.dataset, "decode_all", no_decoding)
    assert cached.fixed_loss(indices) == pytest.approx(expected, rel=1e-5)
    # A second setup finds every clip cached and encodes nothing; other settings are refused.
    again = SemFiTrainer(_config(setup_dirs, tmp_path / "cached2", cache=tmp_path / "cache"))
    again.setup()
    other = SemFiTrainer(
        _config(setup_dirs, tmp_path / "c3", cache=tmp_path / "cache", max_sequence_length=6)
    )
    with pytest.raises(ValueError, match="cached with"):
        other.setup()


def test_cache_only_pass_resumes_where_it_stopped(setup_dirs, tmp_path):
    from typer.testing import CliRunner

    from sfi_bench.app import app
    from sfi_bench.commands import generate, train  # noqa: F401  (registers the commands)

    cache = tmp_path / "cache"
    args = ["train", str(setup_dirs / "data" / "clips.parquet"), "--out", str(tmp_path / "run")]
    args += ["--weights", str(setup_dirs / "wan"), "--cache", str(cache), "--cache-only", "--height", "16"]
    args += ["--width", "16", "--mixed-precision", "no", "--max-sequence-length", "8", "--scale", "5"]
    args += ["--scale", "9"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    files = sorted(cache.glob("*.safetensors"))
    assert len(files) == 4 and not (tmp_path / "run" / "checkpoints").exists()
    kept = {f.name: f.stat().st_mtime_ns for f in files[1:]}
    files[0].unlink()  # an interrupted pass: one clip never finished
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert files[0].is_file() and {f.name: f.stat().st_mtime_ns for f in files[1:]} == kept
    refused = CliRunner().invoke(app, [a for a in args if a not in ("--cache", str(cache))])
    assert refused.exit_code == 2 and "--cache-only needs --cache" in refused.output
