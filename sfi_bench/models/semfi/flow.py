"""Wan2.1's flow-matching objective as SemFi trains it: noise levels, noisy latents, DiT inputs, loss.

x_t = (1 - sigma) x0 + sigma * noise; the DiT predicts the velocity noise - x0 at timestep 1000 * sigma, given
[x_t, mask, guidance latents] (36 channels), the UMT5 text states and the summed CLIP image states.
"""

from __future__ import annotations

import math
from typing import Any

import torch

NUM_TRAIN_TIMESTEPS = 1000  # Wan's timestep scale: t = 1000 * sigma


def shifted_sigmas(uniform: torch.Tensor, shift: float) -> torch.Tensor:
    """sigma = shift u / (1 + (shift - 1) u): Wan's timestep shift applied to u ~ U(0, 1)."""
    return shift * uniform / (1 + (shift - 1) * uniform)


def item_generator(seed: int, step: int, position: int) -> torch.Generator:
    """The noise source of one clip of one step: the same whichever rank or micro-batch draws it, so a run
    on 2 processes, a run on 1 and a resumed run all see the same noise."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 4099 + position)


def draw_noise(latent_shape: tuple[int, ...], shift: float, generator: torch.Generator):
    """(noise of one clip's latents, its sigma) from its generator."""
    noise = torch.randn(latent_shape, generator=generator)
    sigma = shifted_sigmas(torch.rand(1, generator=generator), shift)
    return noise, sigma


def noisy_latents(x0: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    s = sigmas.view(-1, 1, 1, 1, 1).to(x0)
    return (1 - s) * x0 + s * noise


def flow_matching_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity d x_t / d sigma of x_t = (1 - sigma) x0 + sigma noise."""
    return noise - x0


def dit_inputs(x_t, condition, text, image, sigmas, dtype) -> dict[str, Any]:
    """The keyword arguments of WanTransformer3DModel.forward for one training batch."""
    return {
        "hidden_states": torch.cat([x_t, condition.to(x_t)], dim=1).to(dtype),
        "timestep": sigmas.to(x_t.device) * NUM_TRAIN_TIMESTEPS,
        "encoder_hidden_states": text.to(dtype),
        "encoder_hidden_states_image": image.to(dtype),
        "return_dict": False,
    }


def per_sample_loss(model, encoded: dict, noise: torch.Tensor, sigmas: torch.Tensor, dtype) -> torch.Tensor:
    """Mean squared velocity error of every clip in the batch: (B,). `model` is the DiT (or its wrapper);
    `dtype` the DiT's input dtype (its frozen base weights' dtype, as at inference)."""
    x0 = encoded["x0"]
    noise = noise.to(x0)
    x_t = noisy_latents(x0, noise, sigmas)
    prediction = model(
        **dit_inputs(x_t, encoded["condition"], encoded["text"], encoded["image"], sigmas, dtype)
    )[0]
    error = (prediction.float() - flow_matching_target(x0, noise).float()) ** 2
    return error.flatten(1).mean(dim=1)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """LR multiplier: linear warm-up to 1 over `warmup_steps`, then a cosine down to `min_ratio` at the end."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
