"""Full-size GPU check of SemFi (`make gpu-check`): the Wan2.1-I2V-14B transformer from its published config with
random weights (nothing downloaded), a 2-step SemFi generation of 81 frames at 480x832 with the MoL in bf16,
one training step with gradient checkpointing, the fp32 VAE decode, the tiny pipeline and the metric networks.

Prints peak GPU memory and seconds per step for each part, and writes them as JSON (--out). Without CUDA it
says so and exits 0. `--scale tiny` runs the same code with a small config (a CPU dry run of this script).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

# Wan-AI/Wan2.1-I2V-14B-480P-Diffusers transformer/config.json (diffusers' convert_wan_to_diffusers.py).
WAN_I2V_14B = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 36,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "image_dim": 1280,
    "added_kv_proj_dim": 5120,
    "rope_max_seq_len": 1024,
}
TINY = WAN_I2V_14B | {"num_attention_heads": 2, "attention_head_dim": 16, "ffn_dim": 64, "num_layers": 2}
TINY |= {"text_dim": 32, "freq_dim": 32, "image_dim": 16, "added_kv_proj_dim": 32}
WAN_VAE: dict = {}  # AutoencoderKLWan's defaults are Wan2.1's VAE (base_dim 96, z_dim 16)
TINY_VAE = {"base_dim": 8, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}
FULL_SHAPE = {"frames": 81, "height": 480, "width": 832, "text_tokens": 512, "clip_tokens": 257}
TINY_SHAPE = {"frames": 9, "height": 32, "width": 32, "text_tokens": 8, "clip_tokens": 5}


@contextmanager
def measured(results: dict, name: str, device: str):
    """Record seconds and peak GPU memory (GiB) of the block under results[name]."""
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
    record["seconds"] = round(time.perf_counter() - start, 2)
    print(f"{name}: {json.dumps(record)}", flush=True)


def build_transformer(config: dict, device: str, dtype: torch.dtype):
    """Random weights straight on the device in `dtype` (an fp32 build first would need 65 GB)."""
    from diffusers import WanTransformer3DModel

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = WanTransformer3DModel(**config)
    finally:
        torch.set_default_dtype(previous)
    return transformer.eval().requires_grad_(False)


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


def check_generation(transformer, inputs: dict, steps: int, results: dict, device: str) -> None:
    """The sampler loop SemFiPipeline runs: UniPC flow sampling, classifier-free guidance (2 DiT calls a step)."""
    from diffusers import UniPCMultistepScheduler

    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
    )
    scheduler.set_timesteps(steps, device=device)
    latents = inputs["latents"]
    negative_text = torch.zeros_like(inputs["text"])
    with measured(results, f"generate_{steps}_steps", device) as record, torch.inference_mode():
        for t in scheduler.timesteps:
            model_in = torch.cat([latents, inputs["condition"]], dim=1)
            timestep = t.expand(1)
            cond = transformer(model_in, timestep, inputs["text"], inputs["image"], return_dict=False)[0]
            uncond = transformer(model_in, timestep, negative_text, inputs["image"], return_dict=False)[0]
            noise_pred = uncond + 5.0 * (cond - uncond)
            latents = scheduler.step(noise_pred, t, latents, return_dict=False)[0]
        record["latent_shape"] = list(latents.shape)
    results[f"generate_{steps}_steps"]["seconds_per_step"] = round(
        results[f"generate_{steps}_steps"]["seconds"] / steps, 2
    )
    return latents


def check_vae_decode(latents: torch.Tensor, vae_config: dict, results: dict, device: str) -> None:
    """Decode the generated latents with Wan2.1's VAE (its default config, random weights) in fp32, as SemFi does."""
    from diffusers import AutoencoderKLWan

    with torch.device(device):
        vae = AutoencoderKLWan(**vae_config).eval().requires_grad_(False)
    with measured(results, "vae_decode_fp32", device) as record, torch.inference_mode():
        video = vae.decode(latents.float(), return_dict=False)[0]
        record["video_shape"] = list(video.shape)


def check_training_step(transformer, inputs: dict, results: dict, device: str) -> None:
    """One forward + backward of the flow-matching loss through the MoL with gradient checkpointing."""
    from sfi_bench.models.semfi.flow import per_sample_loss
    from sfi_bench.models.semfi.mol import MixtureOfLoRA

    mol = MixtureOfLoRA.attach(transformer)
    mol.activate(81)
    params = mol.parameters()
    for param in params:
        param.requires_grad_(True)
    transformer.enable_gradient_checkpointing()
    transformer.train()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    encoded = {"x0": inputs["latents"].float(), "condition": inputs["condition"], "text": inputs["text"]}
    encoded["image"] = inputs["image"]
    noise = torch.randn_like(encoded["x0"])
    with measured(results, "train_step_gradient_checkpointing", device) as record:
        loss = per_sample_loss(
            transformer, encoded, noise, torch.tensor([0.5], device=device), torch.bfloat16
        )
        loss.mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        record["loss"] = round(float(loss.detach().mean()), 4)
        record["lora_parameters"] = sum(p.numel() for p in params)
    transformer.disable_gradient_checkpointing()
    transformer.eval()
    mol.activate(81)  # generation below runs with the MoL active, as SemFi does


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
    parser.add_argument("--scale", choices=("full", "tiny"), default="full")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="Write the figures here as JSON.")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: skipped, no CUDA device here (run it on a GPU machine)")
        return 0
    config, shape = (WAN_I2V_14B, FULL_SHAPE) if args.scale == "full" else (TINY, TINY_SHAPE)
    results: dict = {"scale": args.scale, "device": args.device, "shape": shape}
    if args.device.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    with measured(results, "build_transformer_bf16", args.device) as record:
        transformer = build_transformer(config, args.device, torch.bfloat16)
        record["parameters"] = sum(p.numel() for p in transformer.parameters())
    inputs = dit_inputs(shape, config, args.device, torch.bfloat16, torch.Generator().manual_seed(0))
    check_training_step(transformer, inputs, results, args.device)
    latents = check_generation(transformer, inputs, args.steps, results, args.device)
    del transformer
    check_vae_decode(latents, WAN_VAE if args.scale == "full" else TINY_VAE, results, args.device)
    check_tiny_pipeline(results, args.device)
    check_metrics(results, args.device)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
