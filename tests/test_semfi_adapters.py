"""SemFi adapters leave this code: diffusers' `load_lora_weights` loads them, and the output equals ours."""

from __future__ import annotations

import pytest
import torch

from sfi_bench.models.semfi.mol import UNIVERSAL, MixtureOfLoRA, MoLConfig, expert_name, merged_name
from sfi_bench.models.semfi.tiny import (
    TinyWanConfig,
    build_tiny_wan_pipeline,
    randomize_adapters,
    tiny_transformer_inputs,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Our MoL with random adapters, its output for expert 9, and the folder it saved."""
    pipe = build_tiny_wan_pipeline()
    mol = MixtureOfLoRA.attach(pipe.transformer, MoLConfig(rank=4, alpha=2.0))  # alpha != rank on purpose
    randomize_adapters(mol, std=0.2, seed=5)
    mol.activate(9)
    with torch.no_grad():
        ours = pipe.transformer(**tiny_transformer_inputs())[0]
    return mol.save(tmp_path_factory.mktemp("adapters") / "mol"), ours


def _lora_params(transformer, adapter):
    return [p for n, p in transformer.named_parameters() if ".lora_" in n and f".{adapter}." in n]


def test_diffusers_loads_universal_and_expert_and_matches_ours(saved):
    folder, ours = saved
    pipe = build_tiny_wan_pipeline()  # same seed: the same base weights
    with torch.no_grad():
        base = pipe.transformer(**tiny_transformer_inputs())[0]
    for name in (UNIVERSAL, expert_name(9)):
        pipe.load_lora_weights(str(folder), weight_name=f"{name}.safetensors", adapter_name=name)
        params = _lora_params(pipe.transformer, name)
        assert len(params) == 2 * 12 * TinyWanConfig().num_layers  # A and B of every adapted layer
        assert any(
            float(p.detach().abs().sum()) > 0 for p in params if p.shape[1] == 4
        )  # the B matrices are loaded
    pipe.set_adapters([UNIVERSAL, expert_name(9)])
    with torch.no_grad():
        theirs = pipe.transformer(**tiny_transformer_inputs())[0]
    assert not torch.allclose(theirs, base, atol=1e-4)
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)


def test_merged_lora_equals_universal_plus_expert(saved):
    folder, ours = saved
    pipe = build_tiny_wan_pipeline()
    pipe.load_lora_weights(str(folder), weight_name=f"{merged_name(9)}.safetensors", adapter_name="m9")
    assert {p.shape[0] for p in _lora_params(pipe.transformer, "m9") if p.ndim == 2 and p.shape[0] < 16} == {
        8
    }
    with torch.no_grad():
        merged = pipe.transformer(**tiny_transformer_inputs())[0]
    torch.testing.assert_close(merged, ours, rtol=1e-5, atol=1e-5)


def test_our_loader_reads_the_diffusers_files(saved):
    folder, ours = saved
    pipe = build_tiny_wan_pipeline()
    mol = MixtureOfLoRA.load(pipe.transformer, folder)
    mol.activate(9)
    with torch.no_grad():
        again = pipe.transformer(**tiny_transformer_inputs())[0]
    assert torch.equal(again, ours)


def test_lora_math_runs_in_float32_on_a_bf16_base():
    pipe = build_tiny_wan_pipeline()
    pipe.transformer.to(torch.bfloat16)
    mol = MixtureOfLoRA.attach(pipe.transformer)
    assert all(p.dtype == torch.float32 for p in mol.parameters())
    seen = []
    layer = pipe.transformer.blocks[0].attn1.to_q
    layer.lora_A[UNIVERSAL].register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    inputs = {
        k: v.to(torch.bfloat16) if torch.is_tensor(v) and v.is_floating_point() else v
        for k, v in tiny_transformer_inputs().items()
    }
    with torch.no_grad():
        out = pipe.transformer(**inputs)[0]
    assert seen == [torch.float32] and out.dtype == torch.bfloat16


def test_the_docs_snippet_runs_on_the_tiny_wan(saved):
    # docs/semfi.md, "Adapter format": the stock pipeline with the adapters, then SemFi's pipeline class
    # from its components for (first, last); the stock pipeline given last_image fails as the docs say.
    import numpy as np
    from PIL import Image

    from sfi_bench.models.semfi.pipeline import semfi_pipeline_class

    folder, _ = saved
    pipe = build_tiny_wan_pipeline()
    pipe.load_lora_weights(str(folder), weight_name="universal.safetensors", adapter_name="universal")
    pipe.load_lora_weights(str(folder), weight_name="expert_17.safetensors", adapter_name="expert_17")
    pipe.set_adapters(["universal", "expert_17"])
    rng = np.random.default_rng(0)
    first, last = (Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(2))
    call = dict(image=first, last_image=last, prompt="a cat turns", num_frames=5, height=16, width=16)
    call |= dict(num_inference_steps=1, guidance_scale=1.0, max_sequence_length=8, output_type="np")
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        pipe(**call)
    semfi = semfi_pipeline_class()(**pipe.components)
    video = semfi(**call).frames[0]
    assert video.shape == (5, 16, 16, 3) and np.isfinite(video).all()
    assert semfi.transformer is pipe.transformer  # the adapters came along
