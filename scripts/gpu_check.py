"""Full-size GPU check of SemFi (`make gpu-check`): the Wan2.1-I2V-14B transformer, UMT5-XXL, CLIP ViT-H/14 and
Wan2.1's VAE from their published configs with random weights (nothing downloaded), at 81 frames of 480x832:

- a training step through the MoL with gradient checkpointing, with the latent cache (the DiT alone, the
  encoders off the GPU, as `--cache` runs) and without it (VAE, UMT5 and CLIP encode the clip every step);
- inference: the DiT sampling loop (classifier-free guidance, 2 DiT calls a step) and the whole SemFi
  pipeline (encoders, sampling, fp32 VAE decode); then the tiny pipeline and the metric networks.

Prints peak GPU memory (allocated and reserved) and seconds per step for each part and writes them as JSON
(--out) after every part. A part starts only while the time budget (--budget-s) lasts, so the whole check
fits 10 minutes on one H100/H200; a part that runs out of memory is recorded as such and the next one runs.
Without CUDA it says so and exits 0. `--scale tiny` runs the same code with small configs (a CPU dry run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sfi_bench.models.semfi.load_ram import WAN21_I2V_14B

# Wan-AI/Wan2.1-I2V-14B-480P-Diffusers transformer/config.json: one definition, in load_ram.
WAN_I2V_14B = WAN21_I2V_14B | {"rope_max_seq_len": 1024}
TINY = WAN_I2V_14B | {"num_attention_heads": 2, "attention_head_dim": 16, "ffn_dim": 64, "num_layers": 2}
TINY |= {"text_dim": 32, "freq_dim": 32, "image_dim": 16, "added_kv_proj_dim": 32}
WAN_VAE: dict = {}  # AutoencoderKLWan's defaults are Wan2.1's VAE (base_dim 96, z_dim 16)
TINY_VAE = {"base_dim": 8, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}
# google/umt5-xxl's encoder (Wan's text encoder, 5.7 B parameters) and CLIP ViT-H/14's vision tower.
UMT5_XXL = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
}
UMT5_XXL |= {
    "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 32,
    "tie_word_embeddings": False,
}
TINY_UMT5 = UMT5_XXL | {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 4}
CLIP_VIT_H14 = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32}
CLIP_VIT_H14 |= {"num_attention_heads": 16, "patch_size": 14, "image_size": 224, "hidden_act": "gelu"}
TINY_CLIP = CLIP_VIT_H14 | {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2}
TINY_CLIP |= {"num_attention_heads": 2, "patch_size": 8, "image_size": 32}
FULL_SHAPE = {"frames": 81, "height": 480, "width": 832, "text_tokens": 512, "clip_tokens": 257}
TINY_SHAPE = {"frames": 9, "height": 32, "width": 32, "text_tokens": 8, "clip_tokens": 17}
SCALES = {
    "full": (WAN_I2V_14B, FULL_SHAPE, WAN_VAE, UMT5_XXL, CLIP_VIT_H14),
    "tiny": (TINY, TINY_SHAPE, TINY_VAE, TINY_UMT5, TINY_CLIP),
}


@contextmanager
def measured(results: dict, name: str, device: str):
    """Record seconds and peak GPU memory (GiB, allocated and reserved) of the block under results[name]."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    record: dict = {}
    results[name] = record
    yield record
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        record["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        record["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    record["seconds"] = round(time.perf_counter() - start, 2)
    print(f"{name}: {json.dumps(record)}", flush=True)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def build_on(device: str, dtype: torch.dtype, factory: Callable[[], Any]):
    """A module built straight on the device in `dtype`, random weights (a 14B fp32 build first needs 65 GB)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            module = factory()
    finally:
        torch.set_default_dtype(previous)
    return module.eval().requires_grad_(False)


def build_transformer(config: dict, device: str, dtype: torch.dtype):
    from diffusers import WanTransformer3DModel

    return build_on(device, dtype, lambda: WanTransformer3DModel(**config))


def build_pipeline(transformer, vae_config: dict, umt5_config: dict, clip_config: dict, device: str):
    """The SemFi pipeline around `transformer`: Wan2.1's VAE and the CLIP tower in fp32, UMT5 in bf16 (as
    SemFi loads them), random weights; the tokenizer is the tiny word-level one (only token ids matter)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    from sfi_bench.models.semfi.pipeline import semfi_pipeline_class
    from sfi_bench.models.semfi.tiny import _tokenizer

    size = clip_config["image_size"]
    pipe = semfi_pipeline_class()(
        tokenizer=_tokenizer(),
        text_encoder=build_on(device, torch.bfloat16, lambda: UMT5EncoderModel(UMT5Config(**umt5_config))),
        vae=build_on(device, torch.float32, lambda: AutoencoderKLWan(**vae_config)),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
        ),
        image_processor=CLIPImageProcessor(crop_size=size, size=size),
        image_encoder=build_on(
            device, torch.float32, lambda: CLIPVisionModel(CLIPVisionConfig(**clip_config))
        ),
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def dit_inputs(
    shape: dict, config: dict, device: str, dtype: torch.dtype, generator: torch.Generator
) -> dict:
    """Random conditioning of SemFi's shape: latents of N frames, mask + guidance latents, text, summed CLIP."""
    latent_frames = (shape["frames"] - 1) // 4 + 1
    size = (latent_frames, shape["height"] // 8, shape["width"] // 8)

    def randn(*dims):
        return torch.randn(*dims, generator=generator).to(device, dtype)

    return {
        "latents": randn(1, 16, *size),
        "condition": randn(1, 20, *size),
        "text": randn(1, shape["text_tokens"], config["text_dim"]),
        "image": randn(1, shape["clip_tokens"], config["image_dim"]),
    }


def train_step(transformer, encoded: dict, optimizer, record: dict) -> None:
    """One forward + backward of the flow-matching loss and an AdamW step (the trainer's step on one clip)."""
    from sfi_bench.models.semfi.flow import per_sample_loss

    transformer.train()
    noise = torch.randn_like(encoded["x0"])
    sigmas = torch.tensor([0.5], device=encoded["x0"].device)
    loss = per_sample_loss(transformer, encoded, noise, sigmas, torch.bfloat16)
    loss.mean().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    record["loss"] = round(float(loss.detach().mean()), 4)


def check_training_step(transformer, inputs: dict, results: dict, device: str, steps: int = 2):
    """Training steps from the latent cache: the DiT alone (the encoders are off the GPU, as under --cache),
    through the MoL with gradient checkpointing. The first step pays for allocation and kernel choice;
    seconds_per_step is the mean of the others. Returns the AdamW, for the uncached step."""
    from sfi_bench.models.semfi.mol import MixtureOfLoRA

    mol = MixtureOfLoRA.attach(transformer)
    mol.activate(81)
    params = mol.parameters()
    for param in params:
        param.requires_grad_(True)
    transformer.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    encoded = {"x0": inputs["latents"].float(), "condition": inputs["condition"], "text": inputs["text"]}
    encoded["image"] = inputs["image"]
    with measured(results, "train_step_cached", device) as record:
        times = []
        for _ in range(steps):
            started = time.perf_counter()
            train_step(transformer, encoded, optimizer, record)
            synchronize(device)
            times.append(time.perf_counter() - started)
        record["first_step_s"] = round(times[0], 2)
        record["seconds_per_step"] = round(sum(times[1:]) / max(len(times) - 1, 1), 2)
        record["lora_parameters"] = sum(p.numel() for p in params)
    return optimizer


def check_training_step_uncached(pipe, optimizer, shape: dict, results: dict, device: str) -> None:
    """A training step without the cache: the VAE (clip and guidance frames), UMT5 and CLIP encode the clip
    on the GPU, where they stay resident, then the DiT step."""
    from sfi_bench.models.semfi.cache import encode_items

    frames = torch.rand(shape["frames"], 3, shape["height"], shape["width"], generator=torch.Generator())
    item = {"frames": frames, "first_frame": frames[0], "last_frame": frames[-1], "caption": "a cat walks"}
    item["num_frames"] = shape["frames"]
    with measured(results, "train_step_uncached", device) as record:
        started = time.perf_counter()
        encoded = encode_items(pipe, [item], shape["text_tokens"], device)
        synchronize(device)
        record["encode_s"] = round(time.perf_counter() - started, 2)
        train_step(pipe.transformer, encoded, optimizer, record)
        synchronize(device)
        record["seconds_per_step"] = round(time.perf_counter() - started, 2)


def check_generation(transformer, inputs: dict, steps: int, results: dict, device: str):
    """The sampler loop SemFiPipeline runs: UniPC flow sampling, classifier-free guidance (2 DiT calls a step)."""
    from diffusers import UniPCMultistepScheduler

    transformer.disable_gradient_checkpointing()
    transformer.eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
    )
    scheduler.set_timesteps(steps, device=device)
    latents = inputs["latents"]
    negative_text = torch.zeros_like(inputs["text"])
    with measured(results, f"generate_{steps}_steps", device) as record, torch.inference_mode():
        started = time.perf_counter()
        for t in scheduler.timesteps:
            model_in = torch.cat([latents, inputs["condition"]], dim=1)
            timestep = t.expand(1)
            cond = transformer(model_in, timestep, inputs["text"], inputs["image"], return_dict=False)[0]
            uncond = transformer(model_in, timestep, negative_text, inputs["image"], return_dict=False)[0]
            noise_pred = uncond + 5.0 * (cond - uncond)
            latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
        synchronize(device)
        record["latent_shape"] = list(latents.shape)
        record["seconds_per_step"] = round((time.perf_counter() - started) / steps, 2)
    return latents


def check_semfi_pipeline(pipe, shape: dict, steps: int, results: dict, device: str) -> None:
    """The whole SemFi inference of `frames` frames: UMT5, CLIP (first + last), VAE encode of the guidance
    frames, `steps` sampling steps with guidance, fp32 VAE decode."""
    from sfi_bench.models.semfi.pipeline import SamplerSettings, sample_first_last

    pipe.transformer.disable_gradient_checkpointing()
    pipe.transformer.eval()
    rng = np.random.default_rng(3)
    size = (shape["height"], shape["width"], 3)
    first, last = (rng.integers(0, 256, size, dtype=np.uint8) for _ in range(2))
    settings = SamplerSettings(
        steps=steps, height=shape["height"], width=shape["width"], max_sequence_length=shape["text_tokens"]
    )
    with measured(results, f"semfi_pipeline_{steps}_steps", device) as record, torch.inference_mode():
        frames, _ = sample_first_last(pipe, first, last, "a cat walks", shape["frames"], 0, settings)
        record["frames"] = list(frames.shape)


def check_vae_decode(latents: torch.Tensor, vae, results: dict, device: str) -> None:
    """Decode the generated latents with Wan2.1's VAE (random weights) in fp32, as SemFi does."""
    with measured(results, "vae_decode_fp32", device) as record, torch.inference_mode():
        video = vae.decode(latents.float(), return_dict=False)[0]
        record["video_shape"] = list(video.shape)


def check_tiny_pipeline(results: dict, device: str) -> None:
    from sfi_bench.models.semfi.pipeline import SamplerSettings, sample_first_last, semfi_pipeline_class
    from sfi_bench.models.semfi.tiny import build_tiny_wan_pipeline

    pipe = semfi_pipeline_class()(**build_tiny_wan_pipeline().components).to(device)
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    first, last = (rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(2))
    settings = SamplerSettings(steps=2, height=32, width=32, max_sequence_length=8)
    with measured(results, "tiny_pipeline", device) as record:
        frames, info = sample_first_last(pipe, first, last, "a cat walks", 9, 0, settings)
        record["frames"] = list(frames.shape)


def check_metrics(results: dict, device: str) -> None:
    """The metric suite on one synthetic clip: which networks ran on the device, which lacked weights."""
    from sfi_bench.metrics.base import ClipSample
    from sfi_bench.metrics.suite import evaluate

    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, (9, 64, 96, 3), dtype=np.uint8)
    sample = ClipSample(
        "gpu_check", 9, clip, clip[::-1].copy(), clip[0], clip[-1], prompt="a cat walks", fps=16.0
    )
    with measured(results, "metrics", device) as record:
        suite = evaluate([sample], device=device)
        values = {k: v for k, v in suite.per_clip[0].items() if k not in ("clip_id", "num_frames")}
        record["computed"] = sorted(
            k for k, v in values.items() if v is not None and not k.endswith("_reason")
        )
        record["not_computed"] = sorted(k for k, v in values.items() if v is None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(SCALES), default="full")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=2, help="Sampling steps of the inference parts.")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="Start no part after this many seconds (default: 7 min).",
    )
    parser.add_argument("--out", type=Path, default=None, help="Write the figures here as JSON.")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: skipped, no CUDA device here (run it on a GPU machine)")
        return 0
    config, shape, vae_config, umt5_config, clip_config = SCALES[args.scale]
    device = args.device
    results: dict = {"scale": args.scale, "device": device, "shape": shape, "budget_s": args.budget_s}
    if device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    deadline = time.perf_counter() + args.budget_s
    held: dict = {}

    def part(name: str, keep: str | None, needs: tuple[str, ...], run: Callable[[], Any]) -> None:
        """Run part `name` (its figures go to results[name], what it returns to held[keep]) if its inputs
        exist and the budget lasts; an out-of-memory is a result, not the end of the check."""
        missing = [n for n in needs if held.get(n) is None]
        late = time.perf_counter() > deadline
        if missing or late:
            why = f"past the {args.budget_s:.0f} s budget" if late else f"needs {missing}"
            results[name] = {"skipped": why}
            print(f"{name}: skipped, {why}", flush=True)
        else:
            try:
                value = run()
                if keep:
                    held[keep] = value
            except torch.cuda.OutOfMemoryError as err:
                results[name] = {"error": "out of memory", "message": str(err).splitlines()[0]}
                print(f"{name}: out of memory", flush=True)
                torch.cuda.empty_cache()
        if args.out is not None:  # after every part: a killed run keeps what it measured
            args.out.write_text(json.dumps(results, indent=2))

    def build() -> Any:
        with measured(results, "build_transformer_bf16", device) as record:
            transformer = build_transformer(config, device, torch.bfloat16)
            record["parameters"] = sum(p.numel() for p in transformer.parameters())
        held["inputs"] = dit_inputs(shape, config, device, torch.bfloat16, torch.Generator().manual_seed(0))
        return transformer

    def build_encoders() -> Any:
        with measured(results, "build_encoders", device):
            return build_pipeline(held["transformer"], vae_config, umt5_config, clip_config, device)

    part("build_transformer_bf16", "transformer", (), build)
    cached = lambda: check_training_step(held["transformer"], held["inputs"], results, device)  # noqa: E731
    part("train_step_cached", "optimizer", ("transformer",), cached)
    part("build_encoders", "pipe", ("transformer",), build_encoders)
    uncached = lambda: check_training_step_uncached(held["pipe"], held["optimizer"], shape, results, device)  # noqa: E731
    part("train_step_uncached", None, ("pipe", "optimizer"), uncached)
    held.pop("optimizer", None)  # inference holds no AdamW state
    loop = lambda: check_generation(held["transformer"], held["inputs"], args.steps, results, device)  # noqa: E731
    part(f"generate_{args.steps}_steps", "latents", ("transformer",), loop)
    whole = lambda: check_semfi_pipeline(held["pipe"], shape, args.steps, results, device)  # noqa: E731
    part(f"semfi_pipeline_{args.steps}_steps", None, ("pipe",), whole)
    held.pop("transformer", None)
    held["vae"] = held["pipe"].vae if held.get("pipe") is not None else None
    held.pop("pipe", None)  # the VAE decode alone: the DiT and the text/image encoders leave the GPU
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    decode = lambda: check_vae_decode(held["latents"], held["vae"], results, device)  # noqa: E731
    part("vae_decode_fp32", None, ("latents", "vae"), decode)
    held.clear()
    part("tiny_pipeline", None, (), lambda: check_tiny_pipeline(results, device))
    part("metrics", None, (), lambda: check_metrics(results, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
