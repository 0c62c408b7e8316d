"""Sampling with Wan2.1 I2V conditioned on first + last frames: SemFi's pipeline, sampler settings, any-N output."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from sfi_bench.models.resample import resample_frames
from sfi_bench.models.semfi.conditioning import native_length, summed_clip_embeds


def semfi_pipeline_class():
    """WanImageToVideoPipeline whose image features for a (first, last) pair are CLIP(I_f) + CLIP(I_l).

    Everything else (guidance frames [I_f, 0..., I_l], the endpoint mask, denoising, decoding) is diffusers'
    first-last path, which matches the paper's definition (checked by the tests).
    """
    from diffusers import WanImageToVideoPipeline

    class SemFiPipeline(WanImageToVideoPipeline):
        def encode_image(self, image, device=None):
            device = device or self._execution_device
            if isinstance(image, list) and len(image) == 2:
                return summed_clip_embeds(
                    self.image_encoder, self.image_processor, [image[0]], [image[1]]
                ).to(device)
            return super().encode_image(image, device)

    return SemFiPipeline


@dataclass
class SamplerSettings:
    """Recorded with every clip. Defaults: Wan2.1 I2V 480P (paper 4.1: 480x832)."""

    steps: int = 50
    guidance_scale: float = 5.0
    shift: float = 3.0  # flow-matching timestep shift (Wan recommends 3.0 at 480P, 5.0 at 720P)
    height: int = 480
    width: int = 832
    negative_prompt: str = ""
    max_sequence_length: int = 512
    resample: str = "nearest"  # how the native 4k+1 frames become N: whole frames, endpoints kept

    @classmethod
    def from_options(cls, options: dict[str, Any], **defaults: Any) -> SamplerSettings:
        """Settings from `--option key=value` strings (or typed values); unknown keys are an error."""
        base = dataclasses.replace(cls(), **defaults)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        changes = {}
        for key, value in options.items():
            if key not in fields:
                raise ValueError(f"unknown sampler setting {key!r}; known: {sorted(fields)}")
            kind = type(getattr(base, key))
            changes[key] = kind(value) if not isinstance(value, kind) else value
        settings = dataclasses.replace(base, **changes)
        if settings.steps < 1 or settings.height % 16 or settings.width % 16:
            raise ValueError(f"need steps >= 1 and height/width multiples of 16, got {settings}")
        return settings

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def apply_shift(pipe, shift: float) -> None:
    """Rebuild the scheduler with this flow shift (UniPC calls it flow_shift, FlowMatchEuler shift)."""
    config = pipe.scheduler.config
    key = "flow_shift" if "flow_shift" in config else "shift"
    if config.get(key) != shift:
        pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: shift})


def to_uint8(video: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(video * 255.0), 0, 255).astype(np.uint8)


def sample_first_last(
    pipe,
    first: np.ndarray,
    last: np.ndarray,
    prompt: str,
    num_frames: int,
    seed: int,
    settings: SamplerSettings,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Generate native_length(N) frames from uint8 (H, W, 3) endpoints, resample to N (endpoints kept)."""
    import torch
    from PIL import Image

    native = native_length(num_frames)
    apply_shift(pipe, settings.shift)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    output = pipe(
        image=Image.fromarray(first),
        last_image=Image.fromarray(last),
        prompt=prompt,
        negative_prompt=settings.negative_prompt,
        num_frames=native,
        height=settings.height,
        width=settings.width,
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        max_sequence_length=settings.max_sequence_length,
        generator=generator,
        output_type="np",
    )
    video = to_uint8(np.asarray(output.frames[0]))
    if video.shape[0] != native:
        raise RuntimeError(f"the pipeline returned {video.shape[0]} frames, expected {native}")
    frames = resample_frames(video, num_frames, mode=settings.resample) if native != num_frames else video
    info = {
        "native_num_frames": native,
        "resampled": native != num_frames,
        "seed": seed,
        "generated_size": [settings.height, settings.width],
        "sampler": settings.record(),
    }
    return frames, info
