"""SemFi's first+last conditioning (paper section 3.2): guidance frames, endpoint mask, summed CLIP embeddings.

These functions are the definition the training loop uses; the inference pipeline feeds the transformer the
same tensors (the tests check that they agree element for element).
"""

from __future__ import annotations

import math

import torch

# Wan's VAE compresses 4 frames into one latent frame (the first frame alone into the first latent).
WAN_TEMPORAL_STRIDE = 4


def native_length(num_frames: int, stride: int = WAN_TEMPORAL_STRIDE) -> int:
    """The smallest length Wan can generate (stride * k + 1, k >= 1) that is >= num_frames."""
    if num_frames < 2:
        raise ValueError(f"SFI needs N >= 2 frames (first and last), got {num_frames}")
    return max(1, math.ceil((num_frames - 1) / stride)) * stride + 1


def guidance_frames(first: torch.Tensor, last: torch.Tensor, num_frames: int) -> torch.Tensor:
    """I_c = [I_f, 0 x (N-2), I_l] along time: (B, C, H, W) x 2 -> (B, C, N, H, W).

    Frames are in the VAE's input range [-1, 1]; zero is mid-grey there, as in Wan-I2V.
    """
    if first.shape != last.shape:
        raise ValueError(
            f"first and last frames differ in shape: {tuple(first.shape)} vs {tuple(last.shape)}"
        )
    if num_frames < 2:
        raise ValueError(f"need N >= 2 guidance frames, got {num_frames}")
    batch, channels, height, width = first.shape
    middle = first.new_zeros(batch, channels, num_frames - 2, height, width)
    return torch.cat([first.unsqueeze(2), middle, last.unsqueeze(2)], dim=2)


def endpoint_mask_per_frame(num_frames: int) -> torch.Tensor:
    """The paper's binary mask M: M_0 = M_{N-1} = 1 (kept frames), 0 elsewhere (generated)."""
    mask = torch.zeros(num_frames)
    mask[0] = 1.0
    mask[num_frames - 1] = 1.0
    return mask


def wan_mask_layout(
    frame_mask: torch.Tensor, latent_height: int, latent_width: int, stride: int = WAN_TEMPORAL_STRIDE
) -> torch.Tensor:
    """Per-frame mask (N,) -> Wan's (1, stride, T_latent, h, w) layout.

    The VAE's first latent frame holds frame 0 alone, so M_0 is repeated `stride` times; every later latent
    frame holds `stride` consecutive frames, one per channel.
    """
    num_frames = frame_mask.shape[0]
    if (num_frames - 1) % stride:
        raise ValueError(f"Wan needs {stride}k+1 frames, got {num_frames}; see native_length()")
    expanded = torch.cat([frame_mask[:1].repeat(stride), frame_mask[1:]])
    latent_frames = expanded.shape[0] // stride
    layout = expanded.view(latent_frames, stride).transpose(0, 1)  # (stride, T_latent)
    return (
        layout[None, :, :, None, None].expand(1, stride, latent_frames, latent_height, latent_width).clone()
    )


def endpoint_mask(num_frames: int, latent_height: int, latent_width: int) -> torch.Tensor:
    return wan_mask_layout(endpoint_mask_per_frame(num_frames), latent_height, latent_width)


def normalize_latents(latents: torch.Tensor, vae) -> torch.Tensor:
    """Wan's per-channel latent normalisation: (z - mean) / std."""
    mean = torch.tensor(vae.config.latents_mean, device=latents.device, dtype=latents.dtype)
    std = torch.tensor(vae.config.latents_std, device=latents.device, dtype=latents.dtype)
    return (latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)


def encode_video(vae, video: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) in [-1, 1] -> normalised latents (mode of the posterior, as Wan does)."""
    latents = vae.encode(video.to(vae.dtype)).latent_dist.mode()
    return normalize_latents(latents.float(), vae)


def condition_latents(vae, first: torch.Tensor, last: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The 20 condition channels: mask (4) + VAE latents of the guidance frames (16): (B, 20, T_lat, h, w)."""
    latents = encode_video(vae, guidance_frames(first, last, num_frames))
    mask = endpoint_mask(num_frames, latents.shape[-2], latents.shape[-1]).to(latents)
    return torch.cat([mask.expand(latents.shape[0], -1, -1, -1, -1), latents], dim=1)


def clip_hidden_states(image_encoder, image_processor, images) -> torch.Tensor:
    """Wan-I2V's image feature: the penultimate CLIP hidden states, before the DiT's projection."""
    device = next(image_encoder.parameters()).device
    pixels = image_processor(images=images, return_tensors="pt").to(device)
    return image_encoder(**pixels, output_hidden_states=True).hidden_states[-2]


def summed_clip_embeds(image_encoder, image_processor, firsts: list, lasts: list) -> torch.Tensor:
    """SemFi: CLIP(I_f) + CLIP(I_l) per pair, keeping the single-image token count: (B, tokens, dim)."""
    if len(firsts) != len(lasts):
        raise ValueError(f"{len(firsts)} first frames but {len(lasts)} last frames")
    states = clip_hidden_states(image_encoder, image_processor, list(firsts) + list(lasts))
    return states[: len(firsts)] + states[len(firsts) :]
