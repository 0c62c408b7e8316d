"""Sampling with Wan2.1 I2V conditioned on first + last frames: SemFi's pipeline, Wan's defaults, any-N output."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from sfi_bench.models.resample import even_native_length, is_whole_frame_retime, resample_frames
from sfi_bench.models.semfi.conditioning import summed_clip_embeds
from sfi_core.resize import fit_area, fit_uint8_image

# Wan2.1's standard negative prompt (wan/configs/shared_config.py, `sample_neg_prompt`). Its I2V-14B config
# prepends "镜头晃动，" (camera shake) and its FLF2V-14B config prepends "镜头切换，" (cut) to that.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
TASK_NEGATIVE_PREFIX = {"i2v": "镜头晃动，", "flf2v": "镜头切换，镜头晃动，"}
# Wan2.1 generate.py: 40 steps for i2v tasks, 50 otherwise (FLF2V).
TASK_STEPS = {"i2v": 40, "flf2v": 50}


def wan_shift(task: str, height: int, width: int) -> float:
    """Wan2.1 generate.py's default sample_shift: FLF2V 16; I2V 3.0 at 480x832 (either way round), else 5.0."""
    if task == "flf2v":
        return 16.0
    return 3.0 if {height, width} == {480, 832} else 5.0


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


_CONVERT = {
    "task": str,
    "steps": int,
    "guidance_scale": float,
    "shift": float,
    "height": int,
    "width": int,
    "negative_prompt": str,
    "max_sequence_length": int,
    "max_native_frames": int,
}


@dataclass
class SamplerSettings:
    """Recorded with every clip (resolved: no None left). Defaults are Wan2.1's for the task at 480P."""

    task: str = "i2v"  # i2v (SemFi) | flf2v: picks Wan's step count, shift and negative prompt
    steps: int | None = None  # None: Wan's for the task (i2v 40, flf2v 50)
    guidance_scale: float = 5.0
    shift: float | None = None  # None: wan_shift(task, height, width)
    # The area to fit (Wan's max_area): the generation keeps the endpoint's aspect (sfi_core.resize).
    height: int = 480
    width: int = 832
    negative_prompt: str | None = None  # None: Wan's standard one for the task
    max_sequence_length: int = 512
    max_native_frames: int = 81  # the longest whole-frame retiming generated (see even_native_length)

    @classmethod
    def from_options(cls, options: dict[str, Any], **defaults: Any) -> SamplerSettings:
        """Settings from `--option key=value` strings (or typed values); unknown keys are an error."""
        base = dataclasses.replace(cls(), **defaults)
        changes = {}
        for key, value in options.items():
            if key not in _CONVERT:
                raise ValueError(f"unknown sampler setting {key!r}; known: {sorted(_CONVERT)}")
            changes[key] = _CONVERT[key](value)
        return dataclasses.replace(base, **changes).resolved()

    def resolved(self) -> SamplerSettings:
        """Fill Wan's defaults for what was left None, and check the values."""
        if self.task not in TASK_STEPS:
            raise ValueError(f"unknown task {self.task!r}; use one of {sorted(TASK_STEPS)}")
        settings = dataclasses.replace(
            self,
            steps=TASK_STEPS[self.task] if self.steps is None else self.steps,
            shift=wan_shift(self.task, self.height, self.width) if self.shift is None else self.shift,
            negative_prompt=(
                TASK_NEGATIVE_PREFIX[self.task] + WAN_NEGATIVE_PROMPT
                if self.negative_prompt is None
                else self.negative_prompt
            ),
        )
        if settings.steps < 1 or settings.height % 16 or settings.width % 16:
            raise ValueError(
                f"need steps >= 1 and height/width multiples of 16, got steps={settings.steps} "
                f"height={settings.height} width={settings.width}"
            )
        return settings

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self.resolved())


def apply_shift(pipe, shift: float) -> None:
    """Rebuild the scheduler with this flow shift (UniPC calls it flow_shift, FlowMatchEuler shift)."""
    config = pipe.scheduler.config
    key = "flow_shift" if "flow_shift" in config else "shift"
    if config.get(key) != shift:
        pipe.scheduler = type(pipe.scheduler).from_config(config, **{key: shift})


def to_uint8(video: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(video * 255.0), 0, 255).astype(np.uint8)


def generation_size(first: np.ndarray, settings: SamplerSettings) -> tuple[int, int]:
    """The (height, width) generated for an endpoint: its aspect, the settings' area, sides % 16."""
    return fit_area(first.shape[0], first.shape[1], (settings.height, settings.width))


def generated_length(num_frames: int, settings: SamplerSettings) -> int:
    """How many frames the DiT generates for N (N itself for N in S; see even_native_length).

    The Mixture-of-LoRA routes by this length, not by N: an expert is trained on clips of its own
    length, and N = 6 generates 21 frames, N = 12 generates 45.
    """
    return even_native_length(num_frames, max_native=settings.resolved().max_native_frames)


def sample_first_last(
    pipe,
    first: np.ndarray,
    last: np.ndarray,
    prompt: str,
    num_frames: int,
    seed: int,
    settings: SamplerSettings,
) -> tuple[np.ndarray, dict[str, Any]]:
    """N frames equally spaced in time between uint8 (H, W, 3) endpoints, all of them generated.

    The endpoints are fitted to the generation size with the training rule (sfi_core.resize), so the
    pipeline's own resize is a no-op; the output stays at that size (the caller resizes back once).
    """
    import torch
    from PIL import Image

    settings = settings.resolved()
    size = generation_size(first, settings)
    native = generated_length(num_frames, settings)
    apply_shift(pipe, settings.shift)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    output = pipe(
        image=Image.fromarray(fit_uint8_image(first, size)),
        last_image=Image.fromarray(fit_uint8_image(last, size)),
        prompt=prompt,
        negative_prompt=settings.negative_prompt,
        num_frames=native,
        height=size[0],
        width=size[1],
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        max_sequence_length=settings.max_sequence_length,
        generator=generator,
        output_type="np",
    )
    video = to_uint8(np.asarray(output.frames[0]))
    if video.shape[0] != native:
        raise RuntimeError(f"the pipeline returned {video.shape[0]} frames, expected {native}")
    # Outputs 0 and N-1 are generated frames 0 and native-1 (never the pasted endpoints).
    frames = resample_frames(video, num_frames, mode="linear") if native != num_frames else video
    info = {
        "native_num_frames": native,
        "resampled": native != num_frames,
        "retime": "whole frames" if is_whole_frame_retime(native, num_frames) else "linear blend",
        "frame_step": (native - 1) / (num_frames - 1),
        "seed": seed,
        "generated_size": list(size),
        "sampler": settings.record(),
    }
    return frames, info
