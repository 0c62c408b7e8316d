"""Known answers for SemFi's training step: what x0 is, what the loss is, what the LoRA scale is.

Each is computed here from the diffusers objects themselves (the VAE's encode and config, the DiT's
forward, peft's layers), not from our helpers, so a step trained on a reversed clip, on [0, 1] pixels,
on the wrong velocity or with another LoRA scale fails a test.
"""

from __future__ import annotations

import torch

from sfi_bench.models.semfi.cache import encode_items
from sfi_bench.models.semfi.flow import per_sample_loss
from sfi_bench.models.semfi.mol import UNIVERSAL, MixtureOfLoRA, MoLConfig, expert_name
from sfi_bench.models.semfi.tiny import build_tiny_wan_pipeline
from sfi_bench.models.semfi.train import TrainConfig

N, H, W = 9, 16, 16


def clip_items() -> list[dict]:
    """A clip whose frames differ in time (a brightening ramp over a fixed texture), float [0, 1]."""
    torch.manual_seed(3)
    texture = torch.rand(3, H, W)
    frames = torch.stack([(texture * 0.5 + 0.5 * t / (N - 1)).clamp(0, 1) for t in range(N)])
    return [
        {
            "frames": frames,
            "first_frame": frames[0],
            "last_frame": frames[-1],
            "caption": "a texture brightens",
            "num_frames": N,
        }
    ]


def test_x0_is_the_normalised_vae_latents_of_the_frames_in_order_in_minus_one_to_one():
    pipe = build_tiny_wan_pipeline()
    items = clip_items()
    encoded = encode_items(pipe, items, max_sequence_length=8, device="cpu")
    video = items[0]["frames"].permute(1, 0, 2, 3).unsqueeze(0) * 2 - 1  # (1, 3, N, H, W), first frame first
    assert video.min() >= -1 and video.max() <= 1 and video.min() < 0
    with torch.no_grad():
        latents = pipe.vae.encode(video).latent_dist.mode()
    mean = torch.tensor(pipe.vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(pipe.vae.config.latents_std).view(1, -1, 1, 1, 1)
    assert not torch.allclose(mean, torch.zeros_like(mean))  # Wan's statistics, not a no-op
    torch.testing.assert_close(encoded["x0"], (latents - mean) / std, rtol=1e-5, atol=1e-5)
    assert encoded["x0"].shape[2] == (N - 1) // 4 + 1


def test_the_loss_is_the_mean_squared_velocity_error_of_the_dit():
    pipe = build_tiny_wan_pipeline()
    encoded = encode_items(pipe, clip_items(), max_sequence_length=8, device="cpu")
    x0 = encoded["x0"]
    generator = torch.Generator().manual_seed(11)
    noise = torch.randn(x0.shape, generator=generator)
    sigma = torch.tensor([0.3])
    got = per_sample_loss(pipe.transformer, encoded, noise, sigma, torch.float32)
    x_t = 0.7 * x0 + 0.3 * noise
    with torch.no_grad():
        prediction = pipe.transformer(
            hidden_states=torch.cat([x_t, encoded["condition"]], dim=1),
            timestep=torch.tensor([300.0]),
            encoder_hidden_states=encoded["text"],
            encoder_hidden_states_image=encoded["image"],
            return_dict=False,
        )[0]
    expected = ((prediction - (noise - x0)) ** 2).mean()
    torch.testing.assert_close(got, expected.view(1), rtol=1e-5, atol=1e-6)


def test_lora_alpha_and_rank_reach_every_layer():
    # The paper: rank 16 for all 7 LoRAs; alpha 16 here (scale alpha / rank = 1), the trainer's default.
    defaults = TrainConfig.__dataclass_fields__
    assert (defaults["rank"].default, defaults["alpha"].default) == (16, 16.0)
    assert (MoLConfig().rank, MoLConfig().alpha) == (16, 16.0)
    from peft.tuners.lora import LoraLayer

    for rank, alpha in ((16, 16.0), (4, 32.0)):
        pipe = build_tiny_wan_pipeline()
        MixtureOfLoRA.attach(pipe.transformer, MoLConfig(rank=rank, alpha=alpha, scales=(5, 9)))
        layers = [m for m in pipe.transformer.modules() if isinstance(m, LoraLayer)]
        assert layers
        for layer in layers:
            for adapter in (UNIVERSAL, expert_name(5), expert_name(9)):
                assert layer.r[adapter] == rank and layer.scaling[adapter] == alpha / rank
