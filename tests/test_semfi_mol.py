"""Mixture-of-LoRA: routing for N = 2..200, only active adapters act, removal is exact, save/load round-trips."""

from __future__ import annotations

import pytest
import torch

from sfi_bench.models.semfi.mol import UNIVERSAL, MixtureOfLoRA, MoLConfig, expert_name, route
from sfi_bench.models.semfi.tiny import (
    TinyWanConfig,
    build_tiny_wan_pipeline,
    randomize_adapters,
    tiny_transformer_inputs,
)
from sfi_core.constants import FRAME_COUNTS


def test_route_is_nearest_scale_for_2_to_200():
    for n in range(2, 201):
        scale = route(n)
        best = min(abs(n - s) for s in FRAME_COUNTS)
        assert abs(n - scale) == best
        if sum(abs(n - s) == best for s in FRAME_COUNTS) > 1:
            assert scale == max(s for s in FRAME_COUNTS if abs(n - s) == best)
    assert [route(s) for s in FRAME_COUNTS] == list(FRAME_COUNTS)


def test_tie_rule_picks_the_larger_scale():
    assert {n: route(n) for n in (7, 13, 25, 49, 73)} == {7: 9, 13: 17, 25: 33, 49: 65, 73: 81}
    assert route(2) == 5 and route(6) == 5 and route(8) == 9 and route(200) == 81
    with pytest.raises(ValueError):
        route(0)


def _run(transformer, inputs):
    with torch.no_grad():
        return transformer(**inputs)[0]


@pytest.fixture()
def transformer():
    return build_tiny_wan_pipeline().transformer


def test_adapters_target_the_documented_layers(transformer):
    mol = MixtureOfLoRA.attach(transformer)
    adapted = {n.rsplit(".lora_A", 1)[0] for n in mol.named_parameters() if ".lora_A." in n}
    suffixes = {n.split(".", 2)[2] for n in adapted}
    assert suffixes == {
        "attn1.to_q",
        "attn1.to_k",
        "attn1.to_v",
        "attn1.to_out.0",
        "attn2.to_q",
        "attn2.to_k",
        "attn2.to_v",
        "attn2.to_out.0",
        "attn2.add_k_proj",
        "attn2.add_v_proj",
        "ffn.net.0.proj",
        "ffn.net.2",
    }
    assert len(adapted) == 12 * TinyWanConfig().num_layers
    lora_a = [p for n, p in mol.named_parameters().items() if ".lora_A." in n]
    assert all(p.shape[0] == 16 for p in lora_a)  # rank 16
    assert set(transformer.peft_config) == {UNIVERSAL} | {expert_name(s) for s in FRAME_COUNTS}


def test_fresh_adapters_leave_the_base_model_unchanged(transformer):
    inputs = tiny_transformer_inputs()
    base = _run(transformer, inputs)
    MixtureOfLoRA.attach(transformer)
    assert torch.equal(_run(transformer, inputs), base)


def test_only_active_adapters_change_the_output(transformer):
    inputs = tiny_transformer_inputs()
    base = _run(transformer, inputs)
    mol = MixtureOfLoRA.attach(transformer)
    randomize_adapters(mol, std=0.2)
    assert mol.activate(17) == 17
    assert mol.active_adapters() == [UNIVERSAL, expert_name(17)]
    out17 = _run(transformer, inputs)
    assert not torch.allclose(out17, base)
    # Perturbing an inactive expert changes nothing; perturbing the active one does.
    with torch.no_grad():
        for p in mol.parameters(expert_name(65)):
            p.add_(1.0)
    assert torch.equal(_run(transformer, inputs), out17)
    with torch.no_grad():
        for p in mol.parameters(expert_name(17)):
            p.add_(0.5)
    assert not torch.equal(_run(transformer, inputs), out17)
    # Each expert gives a different model; switching back reproduces the earlier output exactly.
    mol.activate(5)
    out5 = _run(transformer, inputs)
    assert not torch.allclose(out5, out17)
    mol.activate(6)
    assert torch.equal(_run(transformer, inputs), out5)


def test_universal_and_expert_add_up(transformer):
    """dW = dW_U + dW_E: with LoRA linear in the adapter, the delta of both is the sum of the deltas."""
    inputs = tiny_transformer_inputs()
    base = _run(transformer, inputs)
    mol = MixtureOfLoRA.attach(transformer)
    randomize_adapters(mol, std=0.2)
    mol.activate(33)
    both = _run(transformer, inputs)
    transformer.set_adapters([UNIVERSAL])
    only_u = _run(transformer, inputs)
    transformer.set_adapters([expert_name(33)])
    only_e = _run(transformer, inputs)
    assert not torch.allclose(both, only_u) and not torch.allclose(both, only_e)
    block = transformer.blocks[0].attn1.to_q
    x = torch.randn(3, block.in_features)
    with torch.no_grad():
        transformer.set_adapters([UNIVERSAL, expert_name(33)])
        delta_both = block(x) - block.base_layer(x)
        transformer.set_adapters([UNIVERSAL])
        delta_u = block(x) - block.base_layer(x)
        transformer.set_adapters([expert_name(33)])
        delta_e = block(x) - block.base_layer(x)
    torch.testing.assert_close(delta_both, delta_u + delta_e, rtol=1e-5, atol=1e-6)
    assert base.shape == both.shape


def test_disable_and_remove_give_back_the_base_bit_for_bit(transformer):
    inputs = tiny_transformer_inputs()
    base = _run(transformer, inputs)
    base_state = {k: v.clone() for k, v in transformer.state_dict().items()}
    mol = MixtureOfLoRA.attach(transformer)
    randomize_adapters(mol, std=0.2)
    mol.activate(81)
    assert not torch.equal(_run(transformer, inputs), base)
    mol.disable()
    assert torch.equal(_run(transformer, inputs), base)
    mol.enable()
    assert not torch.equal(_run(transformer, inputs), base)
    mol.remove()
    assert torch.equal(_run(transformer, inputs), base)
    state = transformer.state_dict()
    assert state.keys() == base_state.keys() and all(torch.equal(state[k], base_state[k]) for k in state)


def test_save_load_round_trip(tmp_path):
    first = build_tiny_wan_pipeline().transformer
    mol = MixtureOfLoRA.attach(first, MoLConfig(base_model="tiny"))
    randomize_adapters(mol, std=0.2, seed=3)
    folder = mol.save(tmp_path / "mol")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["mol_config.json"]
        + [f"{n}.safetensors" for n in mol.config.adapter_names]
        + [f"merged_{s}.safetensors" for s in mol.config.scales]
    )
    second = build_tiny_wan_pipeline().transformer  # same seed: same base
    loaded = MixtureOfLoRA.load(second, folder)
    assert loaded.config == mol.config
    a, b = mol.named_parameters(), loaded.named_parameters()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    inputs = tiny_transformer_inputs()
    for n in (5, 40, 120):
        mol.activate(n)
        loaded.activate(n)
        assert torch.equal(_run(first, inputs), _run(second, inputs))


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="mol_config.json"):
        MixtureOfLoRA.load(build_tiny_wan_pipeline().transformer, tmp_path)


def test_the_expert_is_chosen_by_the_length_generated_for_2_to_200():
    # N = 6 generates 21 frames and N = 12 generates 45: the experts of 17 and 33 frames run them, not
    # those of 5 and 9 (the scale-content mismatch MoL is there to prevent).
    from sfi_bench.models.resample import even_native_length
    from sfi_bench.models.semfi.model import SemFiModel
    from sfi_bench.models.semfi.pipeline import generated_length

    class Recording:
        def __init__(self):
            self.asked: list[int] = []

        def activate(self, frames: int) -> int:
            self.asked.append(frames)
            return route(frames)

        def active_adapters(self) -> list[str]:
            return []

    model = SemFiModel(device="cpu")
    model.mol = Recording()
    for n in range(2, 201):
        generated = generated_length(n, model.settings)
        assert generated == even_native_length(n, max_native=model.settings.resolved().max_native_frames)
        info = model._before_sample(n)
        assert model.mol.asked[-1] == generated and info["expert"] == route(generated)
        if n in FRAME_COUNTS:
            assert generated == n and info["expert"] == n
    assert {n: model._before_sample(n)["expert"] for n in (6, 12)} == {6: 17, 12: 33}
