"""scripts/gpu_check.py: skips cleanly without CUDA, and its generation and training parts run (tiny, CPU)."""

from __future__ import annotations

import importlib.util
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


def test_generation_and_training_step_run_tiny_on_cpu(gpu_check):
    results: dict = {}
    transformer = gpu_check.build_transformer(gpu_check.TINY, "cpu", torch.bfloat16)
    assert transformer.dtype == torch.bfloat16
    inputs = gpu_check.dit_inputs(
        gpu_check.TINY_SHAPE, gpu_check.TINY, "cpu", torch.bfloat16, torch.Generator()
    )
    gpu_check.check_training_step(transformer, inputs, results, "cpu")
    latents = gpu_check.check_generation(transformer, inputs, 2, results, "cpu")
    gpu_check.check_vae_decode(latents, gpu_check.TINY_VAE, results, "cpu")
    assert results["vae_decode_fp32"]["video_shape"] == [1, 3, 9, 32, 32]
    assert results["train_step_gradient_checkpointing"]["loss"] > 0
    assert results["generate_2_steps"]["latent_shape"] == [1, 16, 3, 4, 4]
    assert results["generate_2_steps"]["seconds_per_step"] >= 0
