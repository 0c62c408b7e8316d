"""scripts/gpu_check.py: skips cleanly without CUDA, and its generation and training parts run (tiny, CPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run")
def test_skips_without_cuda(gpu_check, capsys):
    assert gpu_check.main([]) == 0
    assert "skipped, no CUDA device" in capsys.readouterr().out


def test_full_config_is_the_published_14b_transformer(gpu_check):
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        transformer = WanTransformer3DModel(**gpu_check.WAN_I2V_14B)
    parameters = sum(p.numel() for p in transformer.parameters())
    assert 16.0e9 < parameters < 16.8e9  # Wan2.1-I2V-14B: 16.4 B with the image branch


def test_every_part_runs_tiny_on_cpu(gpu_check):
    """Both training steps (from the cache, and encoding the clip), the sampling loop, the whole pipeline and
    the VAE decode, with the script's own tiny configs."""
    config, shape, vae_config, umt5_config, clip_config = gpu_check.SCALES["tiny"]
    results: dict = {}
    transformer = gpu_check.build_transformer(config, "cpu", torch.bfloat16)
    assert transformer.dtype == torch.bfloat16
    inputs = gpu_check.dit_inputs(shape, config, "cpu", torch.bfloat16, torch.Generator())
    optimizer = gpu_check.check_training_step(transformer, inputs, results, "cpu")
    pipe = gpu_check.build_pipeline(transformer, vae_config, umt5_config, clip_config, "cpu")
    assert (pipe.vae.dtype, pipe.image_encoder.dtype, pipe.text_encoder.dtype) == (
        torch.float32,
        torch.float32,
        torch.bfloat16,
    )
    gpu_check.check_training_step_uncached(pipe, optimizer, shape, results, "cpu")
    latents = gpu_check.check_generation(transformer, inputs, 2, results, "cpu")
    gpu_check.check_semfi_pipeline(pipe, shape, 2, results, "cpu")
    gpu_check.check_vae_decode(latents, pipe.vae, results, "cpu")
    assert results["train_step_cached"]["loss"] > 0 and results["train_step_cached"]["seconds_per_step"] > 0
    uncached = results["train_step_uncached"]
    assert uncached["loss"] > 0 and 0 < uncached["encode_s"] < uncached["seconds_per_step"]
    assert results["generate_2_steps"]["latent_shape"] == [1, 16, 3, 4, 4]
    assert results["generate_2_steps"]["seconds_per_step"] > 0
    assert results["semfi_pipeline_2_steps"]["frames"] == [9, 32, 32, 3]
    assert results["vae_decode_fp32"]["video_shape"] == [1, 3, 9, 32, 32]


def test_no_part_starts_past_the_budget(gpu_check, tmp_path):
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--scale", "tiny", "--device", "cpu", "--budget-s", "0", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    parts = [k for k, v in results.items() if isinstance(v, dict) and "skipped" in v]
    assert "train_step_cached" in parts and "semfi_pipeline_2_steps" in parts and "metrics" in parts
    assert all(results[k]["skipped"] == "past the 0 s budget" for k in parts)


def test_the_full_encoders_are_umt5_xxl_and_clip_vit_h(gpu_check):
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        text = UMT5EncoderModel(UMT5Config(**gpu_check.UMT5_XXL))
        image = CLIPVisionModel(CLIPVisionConfig(**gpu_check.CLIP_VIT_H14))
    assert 5.6e9 < sum(p.numel() for p in text.parameters()) < 5.8e9  # umt5-xxl's encoder
    assert 0.62e9 < sum(p.numel() for p in image.parameters()) < 0.64e9  # ViT-H/14
    assert gpu_check.WAN_I2V_14B["text_dim"] == gpu_check.UMT5_XXL["d_model"]
    assert gpu_check.WAN_I2V_14B["image_dim"] == gpu_check.CLIP_VIT_H14["hidden_size"]
