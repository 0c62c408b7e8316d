"""The training math pinned: a known-answer flow-matching loss, and the trainer's DiT inputs (captured at the
call) equal to what inference feeds the DiT for the same sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfi_bench.models.semfi.flow import draw_noise, item_generator, per_sample_loss
from sfi_bench.models.semfi.pipeline import SamplerSettings, sample_first_last
from sfi_bench.models.semfi.tiny import save_tiny_semfi
from sfi_bench.models.semfi.train import SemFiTrainer, TrainConfig
from sfi_data.testing.toy_dataset import build_toy_dataset


def test_flow_matching_loss_known_answer():
    """x0 = 0.5, noise = -1, sigma = 0.25: x_t = 0.125, target noise - x0 = -1.5, t = 250.

    A DiT that predicts 1 everywhere has loss (1 - (-1.5))^2 = 6.25 (a flipped target would give 0.25).
    """
    seen = {}

    def dit(**inputs):
        seen.update(inputs)
        return (torch.ones(inputs["hidden_states"].shape[0], 16, *inputs["hidden_states"].shape[2:]),)

    shape = (2, 16, 2, 2, 2)
    encoded = {
        "x0": torch.full(shape, 0.5),
        "condition": torch.full((2, 20, 2, 2, 2), 7.0),
        "text": torch.full((2, 3, 4), 2.0),
        "image": torch.full((2, 5, 4), 3.0),
    }
    losses = per_sample_loss(dit, encoded, torch.full(shape, -1.0), torch.tensor([0.25, 0.25]), torch.float32)
    torch.testing.assert_close(losses, torch.tensor([6.25, 6.25]))
    torch.testing.assert_close(seen["timestep"], torch.tensor([250.0, 250.0]))
    torch.testing.assert_close(seen["hidden_states"][:, :16], torch.full(shape, 0.125))
    assert torch.equal(seen["hidden_states"][:, 16:], encoded["condition"])
    assert torch.equal(seen["encoder_hidden_states"], encoded["text"])
    assert torch.equal(seen["encoder_hidden_states_image"], encoded["image"])


def test_noise_levels_follow_the_shift():
    """sigma = shift u / (1 + (shift - 1) u) with u from the clip's own generator, in (0, 1)."""
    noise, sigma = draw_noise((16, 2, 2, 2), 5.0, item_generator(0, 3, 1))
    generator = item_generator(0, 3, 1)
    torch.randn((16, 2, 2, 2), generator=generator)
    u = torch.rand(1, generator=generator)
    torch.testing.assert_close(sigma, 5.0 * u / (1 + 4.0 * u))
    assert 0.0 < float(sigma) < 1.0 and noise.shape == (16, 2, 2, 2)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    root = tmp_path_factory.mktemp("semfi_math")
    build_toy_dataset(root / "data", num_videos=1, scales=(9,), width=48, height=32)
    save_tiny_semfi(root / "wan", adapters=False)
    config = TrainConfig(
        manifest=root / "data" / "clips.parquet",
        out=root / "run",
        weights=str(root / "wan"),
        global_batch=1,
        height=16,
        width=16,
        mixed_precision="no",
        max_sequence_length=8,
        save_every=0,
        sample_every=0,
        scales=(9,),
    )
    trainer = SemFiTrainer(config)
    trainer.setup()
    return trainer


def _read_png(path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _capture(transformer) -> tuple[list, object]:
    seen = []

    def hook(module, args, kwargs):
        seen.append({k: v.detach().clone() for k, v in kwargs.items() if torch.is_tensor(v)})

    return seen, transformer.register_forward_pre_hook(hook, with_kwargs=True)


def test_trainer_dit_inputs_equal_inference_conditioning(trainer):
    """Same clip: the trainer's [mask, guidance latents], image tokens and text states at the DiT call equal
    the ones the sampling pipeline gives the DiT from the benchmark's uint8 endpoint PNGs; t = 1000 sigma."""
    row = trainer.dataset.rows[0]
    seen, handle = _capture(trainer.mol.transformer)
    try:
        trainer.fixed_loss([0], step=7)
        first, last = (
            _read_png(trainer.dataset.root / row[key]) for key in ("first_frame_path", "last_frame_path")
        )
        settings = SamplerSettings(steps=1, guidance_scale=1.0, height=16, width=16, max_sequence_length=8)
        frames, info = sample_first_last(trainer.pipe, first, last, row["caption"] or "", 9, 0, settings)
    finally:
        handle.remove()
    train_inputs, infer_inputs = seen
    assert info["generated_size"] == [16, 16] and train_inputs["hidden_states"].shape[-2:] == (2, 2)
    assert not np.array_equal(first, last)  # the endpoints differ, so swapping them shows
    torch.testing.assert_close(
        train_inputs["hidden_states"][:, 16:], infer_inputs["hidden_states"][:, 16:], rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        train_inputs["encoder_hidden_states_image"],
        infer_inputs["encoder_hidden_states_image"],
        rtol=1e-5,
        atol=1e-5,
    )
    torch.testing.assert_close(train_inputs["encoder_hidden_states"], infer_inputs["encoder_hidden_states"])
    _, sigma = draw_noise(
        tuple(train_inputs["hidden_states"][:, :16].shape[1:]), 5.0, item_generator(0, 7, 0)
    )
    torch.testing.assert_close(train_inputs["timestep"], sigma * 1000)
