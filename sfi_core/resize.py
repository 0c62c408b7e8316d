"""The one resize rule of SemFi training, inference and the harness: keep the aspect, fit an area, sides % 16.

Wan2.1 (generate.py / image2video.py, and diffusers' I2V example) sizes a generation from the input image:
h = sqrt(area * H/W), w = sqrt(area * W/H), each rounded, then down to a multiple of 16 (VAE stride 8 x patch 2),
so a portrait clip becomes a portrait generation instead of being squashed into 480x832. The frames are then
scaled to cover that size and centre-cropped by the few pixels the rounding leaves (no distortion), and the
harness resizes the output back to the clip's size once.
"""

from __future__ import annotations

import math

import torch

# The paper's and Wan2.1's two generation resolutions, (height, width) of a landscape frame.
RESOLUTIONS: dict[str, tuple[int, int]] = {"480p": (480, 832), "720p": (720, 1280)}
SIDE_MULTIPLE = 16  # VAE spatial stride (8) x DiT patch (2)


def fit_area(
    height: int, width: int, area_hw: tuple[int, int] = RESOLUTIONS["480p"], multiple: int = SIDE_MULTIPLE
) -> tuple[int, int]:
    """(height, width) for a `height` x `width` source: same aspect, area <= area_hw's, sides % `multiple`."""
    if height < 1 or width < 1:
        raise ValueError(f"a frame needs a positive size, got {height}x{width}")
    area = area_hw[0] * area_hw[1]
    aspect = height / width
    # round() first, as diffusers' Wan I2V example does: sqrt(480*832 * 480/832) is 479.99999... in floats.
    fit_h = round(math.sqrt(area * aspect)) // multiple * multiple
    fit_w = round(math.sqrt(area / aspect)) // multiple * multiple
    # A tiny area (tests) or an extreme aspect could round a side to 0: keep one block.
    return max(multiple, fit_h), max(multiple, fit_w)


def cover_and_crop(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Float frames (T, 3, h, w) in [0, 1] -> (T, 3, H, W): scale to cover, centre-crop the rest, no stretch."""
    height, width = size
    src_h, src_w = frames.shape[-2:]
    if (src_h, src_w) == (height, width):
        return frames
    scale = max(height / src_h, width / src_w)
    mid_h = max(height, math.ceil(src_h * scale - 1e-6))
    mid_w = max(width, math.ceil(src_w * scale - 1e-6))
    out = torch.nn.functional.interpolate(frames, size=(mid_h, mid_w), mode="bilinear", antialias=True)
    top, left = (mid_h - height) // 2, (mid_w - width) // 2
    return out[..., top : top + height, left : left + width].clamp_(0.0, 1.0)


def quantize_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Round float [0, 1] frames onto the 8-bit grid: what an encoder sees after a PNG/uint8 round trip.

    The condition frames go through this in training as well, so the trainer's VAE and CLIP inputs equal
    the ones inference builds from uint8 endpoints, value for value.
    """
    return (frames.clamp(0.0, 1.0) * 255.0).round().div_(255.0)


def fit_uint8_image(image, size: tuple[int, int]):
    """uint8 (H, W, 3) array -> uint8 (h, w, 3) array at `size` with the same rule as the training frames."""
    import numpy as np

    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div_(255.0)
    fitted = cover_and_crop(tensor, size)[0]
    return (fitted * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
