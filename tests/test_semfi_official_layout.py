"""The official Wan2.1 folder layout loads, and gives what the diffusers folder of the same weights gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from sfi_bench.models import SFIRequest, make_model
from sfi_bench.models.semfi import wan_keys
from sfi_bench.models.semfi.tiny import TinyWanConfig, build_tiny_wan_pipeline
from sfi_bench.models.semfi.tiny_official import (
    TINY_OFFICIAL,
    official_clip_state,
    official_t5_state,
    official_transformer_state,
    official_vae_state,
    save_tiny_both_layouts,
    write_transformer_shards,
)
from sfi_bench.models.semfi.wan_official import (
    checkpoint_layout,
    load_diffusers_text_encoder,
    load_transformer,
    load_umt5,
    transformer_config,
)
from sfi_core.weights import WeightsMissingError

FAST = {"steps": 2, "guidance_scale": 1.0, "height": 16, "width": 16, "max_sequence_length": 8}

# Read from github.com/Wan-Video/Wan2.1 wan/modules/model.py (WanModel.__init__, model_type 'i2v'): the
# parameters outside the blocks. One block's are wan_keys.OFFICIAL_BLOCK_KEYS (WanAttentionBlock).
WANMODEL_TOP_KEYS = {
    "patch_embedding.weight", "patch_embedding.bias",
    "text_embedding.0.weight", "text_embedding.0.bias", "text_embedding.2.weight", "text_embedding.2.bias",
    "time_embedding.0.weight", "time_embedding.0.bias", "time_embedding.2.weight", "time_embedding.2.bias",
    "time_projection.1.weight", "time_projection.1.bias",
    "head.head.weight", "head.head.bias", "head.modulation",
    "img_emb.proj.0.weight", "img_emb.proj.0.bias", "img_emb.proj.1.weight", "img_emb.proj.1.bias",
    "img_emb.proj.3.weight", "img_emb.proj.3.bias", "img_emb.proj.4.weight", "img_emb.proj.4.bias",
}  # fmt: skip
# wan/modules/t5.py T5SelfAttention (shared_pos=False, as umt5_xxl sets it), one block of the encoder.
T5_BLOCK_KEYS = {
    "norm1.weight", "attn.q.weight", "attn.k.weight", "attn.v.weight", "attn.o.weight",
    "norm2.weight", "ffn.gate.0.weight", "ffn.fc1.weight", "ffn.fc2.weight", "pos_embedding.embedding.weight",
}  # fmt: skip
# wan/modules/clip.py AttentionBlock inside VisionTransformer (visual.transformer.N).
CLIP_BLOCK_KEYS = {
    "norm1.weight", "norm1.bias", "attn.to_qkv.weight", "attn.to_qkv.bias", "attn.proj.weight",
    "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias",
}  # fmt: skip
# wan/modules/vae.py ResidualBlock (residual Sequential + 1x1 shortcut when the width changes).
VAE_RESIDUAL_KEYS = {
    "residual.0.gamma", "residual.2.weight", "residual.2.bias", "residual.3.gamma",
    "residual.6.weight", "residual.6.bias",
}  # fmt: skip


def _block(keys, prefix):
    return {k.removeprefix(prefix) for k in keys if k.startswith(prefix)}


def test_the_writer_uses_the_names_wan_defines_and_every_key_maps_both_ways():
    pipe = build_tiny_wan_pipeline(TINY_OFFICIAL)
    transformer = official_transformer_state(pipe.transformer)
    assert _block(transformer, "blocks.1.") == set(wan_keys.OFFICIAL_BLOCK_KEYS)
    assert {k for k in transformer if not k.startswith("blocks.")} == WANMODEL_TOP_KEYS
    t5, clip = official_t5_state(pipe.text_encoder), official_clip_state(pipe.image_encoder)
    assert _block(t5, "blocks.0.") == T5_BLOCK_KEYS and {"token_embedding.weight", "norm.weight"} < t5.keys()
    assert _block(clip, "visual.transformer.1.") == CLIP_BLOCK_KEYS
    vae = official_vae_state(pipe.vae)
    assert _block(vae, "encoder.downsamples.0.") == VAE_RESIDUAL_KEYS
    assert _block(vae, "decoder.upsamples.3.") == VAE_RESIDUAL_KEYS | {"shortcut.weight", "shortcut.bias"}
    assert {"decoder.upsamples.2.resample.1.weight", "decoder.upsamples.2.time_conv.weight"} < vae.keys()
    assert "decoder.upsamples.8.time_conv.weight" not in vae  # the last upsampling is spatial only

    # Both ways, nothing left over: diffusers -> official is one-to-one and official -> diffusers undoes it.
    blocks = pipe.vae.config.num_res_blocks
    for names, back, forward in [
        (pipe.transformer.state_dict(), wan_keys.transformer_to_diffusers, wan_keys.transformer_to_official),
        (pipe.vae.state_dict(), lambda k: wan_keys.vae_to_diffusers(k, blocks), lambda k: wan_keys.vae_to_official(k, blocks)),
        (pipe.text_encoder.state_dict().keys() - wan_keys.T5_TIED.keys(), wan_keys.t5_to_diffusers, wan_keys.t5_to_official),
    ]:  # fmt: skip
        official = {forward(k): k for k in names}
        assert len(official) == len(names) and all(back(o) == d for o, d in official.items())
    image = pipe.image_encoder.state_dict()
    restored = dict(
        kv
        for k, t in clip.items()
        if not wan_keys.clip_is_unused(k)
        for kv in wan_keys.clip_to_diffusers(k, t)
    )
    assert restored.keys() == image.keys() and all(torch.equal(restored[k], image[k]) for k in image)
    assert {k for k in clip if wan_keys.clip_is_unused(k)} >= {"visual.head", "log_scale"}


def test_keys_of_another_model_are_refused():
    for convert, key in [
        (wan_keys.transformer_to_diffusers, "blocks.0.self_attn.qkv.weight"),
        (wan_keys.transformer_to_diffusers, "vace_blocks.0.after_proj.bias"),
        (wan_keys.t5_to_diffusers, "blocks.0.cross_attn.q.weight"),
        (lambda k: wan_keys.vae_to_diffusers(k, 2), "decoder.upsamples.3.residual.2.weight"),
    ]:
        with pytest.raises(wan_keys.UnmappedKeyError):
            convert(key)


def test_flf2v_position_embedding_comes_through(tmp_path):
    transformer = build_tiny_wan_pipeline(TinyWanConfig(flf2v=True, image_dim=160)).transformer
    official = official_transformer_state(transformer)
    assert official["img_emb.emb_pos"].shape == (1, 2 * TINY_OFFICIAL.clip_tokens, 160)
    write_transformer_shards(official, tmp_path, num_shards=2)
    config = {
        "dim": 16,
        "num_heads": 2,
        "ffn_dim": 32,
        "num_layers": 2,
        "model_type": "flf2v",
        "freq_dim": 32,
    }
    (tmp_path / "config.json").write_text(json.dumps(config | {"in_dim": 36, "out_dim": 16}))
    loaded = load_transformer(tmp_path, torch.float32, official=True)
    assert loaded.config.pos_embed_seq_len == 2 * TINY_OFFICIAL.clip_tokens
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in transformer.state_dict().items())


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return save_tiny_both_layouts(tmp_path_factory.mktemp("wan_layouts"))


def _request(n=5):
    rng = np.random.default_rng(n)
    first, last = (rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(2))
    return SFIRequest(
        clip_id="c", first_frame=first, last_frame=last, prompt="a cat turns", num_frames=n, seed=0
    )


def test_both_layouts_give_the_same_tiny_model_output(layouts):
    diffusers_folder, official_folder = layouts
    assert (checkpoint_layout(diffusers_folder), checkpoint_layout(official_folder)) == (
        "diffusers",
        "official",
    )
    assert len(list(official_folder.glob("diffusion_pytorch_model-0000?-of-00003.safetensors"))) == 3
    results = []
    for folder in layouts:
        model = make_model("semfi", device="cpu", weights=str(folder), adapters="none", **FAST)
        results.append(model.generate(_request()))
        states = [getattr(model.pipe, name).state_dict() for name in ("transformer", "vae", "image_encoder")]
        results[-1].states = states + [model.pipe.text_encoder.state_dict()]
    for a, b in zip(results[0].states, results[1].states, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(results[0].frames, results[1].frames)
    assert results[0].frames.std() > 0


def test_bf16_loading_keeps_what_diffusers_and_transformers_keep_in_fp32(layouts):
    from diffusers import WanTransformer3DModel
    from transformers import UMT5EncoderModel

    diffusers_folder, official_folder = layouts
    reference = WanTransformer3DModel.from_pretrained(
        diffusers_folder / "transformer", torch_dtype=torch.bfloat16
    )
    for loaded in (
        load_transformer(diffusers_folder / "transformer", torch.bfloat16, official=False),
        load_transformer(official_folder, torch.bfloat16, official=True),
    ):
        ours, theirs = loaded.state_dict(), reference.state_dict()
        assert {k: v.dtype for k, v in ours.items()} == {k: v.dtype for k, v in theirs.items()}
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert reference.state_dict()["scale_shift_table"].dtype == torch.float32  # kept fp32 by diffusers
    t5_file = official_folder / "models_t5_umt5-xxl-enc-bf16.pth"
    for dtype in (torch.bfloat16, torch.float16):
        theirs = UMT5EncoderModel.from_pretrained(diffusers_folder / "text_encoder", dtype=dtype).state_dict()
        for ours in (
            load_umt5(t5_file, dtype).state_dict(),
            load_diffusers_text_encoder(diffusers_folder / "text_encoder", dtype).state_dict(),
        ):
            assert {k: v.dtype for k, v in ours.items()} == {k: v.dtype for k, v in theirs.items()}
            assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_an_incomplete_official_folder_names_the_missing_file(layouts, tmp_path):
    partial = tmp_path / "wan"
    shutil.copytree(layouts[1], partial)
    (partial / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth").unlink()
    with pytest.raises(WeightsMissingError) as missing:
        make_model("semfi", device="cpu", weights=str(partial), adapters="none", **FAST).load()
    message = str(missing.value)
    assert "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth" in message and str(partial) in message
    assert f"hf download Wan-AI/Wan2.1-I2V-14B-480P --local-dir {partial}" in message


def test_transformer_config_reads_what_wanmodel_does_not_write():
    official = {"dim": 5120, "ffn_dim": 13824, "freq_dim": 256, "in_dim": 36, "model_type": "i2v",
                "num_heads": 40, "num_layers": 40, "out_dim": 16, "text_len": 512, "eps": 1e-06}  # fmt: skip
    shapes = {
        "patch_embedding.weight": (5120, 36, 1, 2, 2),
        "text_embedding.0.weight": (5120, 4096),
        "time_embedding.0.weight": (5120, 256),
        "img_emb.proj.0.weight": (1280,),
        "head.head.weight": (64, 5120),
    }
    config = transformer_config(official, shapes)
    # Exactly what diffusers' convert_wan_to_diffusers.py configures for "Wan-I2V-14B-480p" (load_ram keeps it).
    from sfi_bench.models.semfi.load_ram import WAN21_I2V_14B

    assert {k: config[k] for k in WAN21_I2V_14B} == WAN21_I2V_14B
    assert (config["rope_max_seq_len"], config["pos_embed_seq_len"]) == (1024, None)


def test_convert_wan_writes_a_bf16_diffusers_folder_with_the_same_weights(layouts, tmp_path, capsys):
    from sfi_bench.cli import main

    official_folder = layouts[1]
    target = tmp_path / "converted"
    with pytest.raises(SystemExit) as done:
        main(["convert-wan", str(official_folder), str(target)])
    assert done.value.code == 0
    assert checkpoint_layout(target) == "diffusers" and not list(tmp_path.glob(".*partial"))
    converted = load_transformer(target / "transformer", torch.float32, official=False).state_dict()
    direct = load_transformer(official_folder, torch.bfloat16, official=True).state_dict()
    # Read back in fp32, the converted weights are exactly the bf16 values the official folder loads as.
    assert all(torch.equal(converted[k], direct[k].float()) for k in direct)
    from safetensors import safe_open

    from sfi_bench.models.semfi.wan_load import safetensors_files

    with safe_open(str(safetensors_files(target / "transformer")[0]), framework="pt") as stored:
        assert stored.get_slice("blocks.0.attn1.to_q.weight").get_dtype() == "BF16"  # bf16 on disk
    with pytest.raises(SystemExit) as again:  # a second run never overwrites
        main(["convert-wan", str(official_folder), str(target)])
    assert again.value.code == 2 and f"{target} exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a diffusers folder is not converted again
        main(["convert-wan", str(target), str(tmp_path / "again")])
    assert "a diffusers folder already" in capsys.readouterr().err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_peak_host_memory_is_the_bf16_model_plus_one_shard(tmp_path):
    """A 21M-parameter transformer in 4 fp32 shards, loaded in bf16 in a fresh process: the resident set
    grows by the bf16 model and about one shard's pages; a loader reading fp32 whole would add 85 MB."""
    from diffusers import WanTransformer3DModel

    from sfi_bench.models.semfi.tiny_official import official_config

    torch.manual_seed(0)
    model = WanTransformer3DModel(
        num_attention_heads=4, attention_head_dim=128, in_channels=36, out_channels=16, text_dim=64,
        freq_dim=32, ffn_dim=2048, num_layers=4, cross_attn_norm=True, image_dim=80, added_kv_proj_dim=512,
    )  # fmt: skip
    write_transformer_shards(official_transformer_state(model), tmp_path, num_shards=4)
    (tmp_path / "config.json").write_text(json.dumps(official_config(model, flf2v=False)))
    del model
    run = subprocess.run(
        [sys.executable, "-m", "sfi_bench.models.semfi.load_ram", str(tmp_path), "--dtype", "bf16"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(run.stdout)
    assert report["layout"] == "official" and report["params"] > 20_000_000
    growth, model_bytes = report["peak_rss_growth_bytes"], report["loaded_bytes"]
    assert model_bytes < 0.6 * report["fp32_bytes"]  # bf16 (a few small tensors stay fp32)
    assert model_bytes <= growth < model_bytes + report["largest_shard_bytes"] + 12 * 2**20


def test_same_shaped_tensors_go_where_wans_forward_uses_them():
    """Names alone cannot tell a swap of two same-shaped tensors that is undone on the way back. These
    compute what Wan's code computes from the official tensors, as its forward writes it, and compare
    with the module they were loaded into."""
    import math

    pipe = build_tiny_wan_pipeline(TINY_OFFICIAL)
    for module in (pipe.text_encoder, pipe.image_encoder):
        module.eval()  # no dropout
    generator = torch.Generator().manual_seed(0)
    # t5.py T5FeedForward.forward: fc2(fc1(x) * gate(x)), gate = Linear then GELU (tanh form, t5.py GELU).
    t5 = official_t5_state(pipe.text_encoder)
    x = torch.randn(3, pipe.text_encoder.config.d_model, generator=generator)
    gate = x @ t5["blocks.0.ffn.gate.0.weight"].T
    gelu = 0.5 * gate * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (gate + 0.044715 * gate**3)))
    wan_ffn = (x @ t5["blocks.0.ffn.fc1.weight"].T * gelu) @ t5["blocks.0.ffn.fc2.weight"].T
    ffn = pipe.text_encoder.encoder.block[0].layer[1].DenseReluDense
    assert torch.allclose(ffn(x), wan_ffn, atol=1e-6)
    # clip.py SelfAttention.forward: q, k, v = to_qkv(x).view(b, s, 3, n, d).unbind(2).
    clip = official_clip_state(pipe.image_encoder)
    hidden, heads = pipe.image_encoder.config.hidden_size, pipe.image_encoder.config.num_attention_heads
    x = torch.randn(1, 4, hidden, generator=generator)
    qkv = (
        x @ clip["visual.transformer.0.attn.to_qkv.weight"].T + clip["visual.transformer.0.attn.to_qkv.bias"]
    )
    q, k, v = qkv.view(1, 4, 3, heads, hidden // heads).unbind(2)
    attention = pipe.image_encoder.encoder.layers[0].self_attn
    for wan, ours in [(q, attention.q_proj), (k, attention.k_proj), (v, attention.v_proj)]:
        assert torch.allclose(ours(x), wan.reshape(1, 4, hidden), atol=1e-6)
    # model.py WanAttentionBlock.forward: e = modulation + time projection, chunked 6 ways; e[0], e[1] shift and
    # scale norm1 before self-attention (diffusers: shift_msa, scale_msa from scale_shift_table + temb).
    block = official_transformer_state(pipe.transformer)
    assert torch.equal(block["blocks.0.modulation"], pipe.transformer.blocks[0].scale_shift_table)


def test_the_14b_components_map_and_their_configs_come_back_from_the_shapes():
    """The real sizes, built on the meta device (no memory): the VAE's decoder indices are the ones diffusers'
    convert script writes out for Wan2.1_VAE.pth, and each config read back from official-named shapes is the
    one the component was built from."""
    from diffusers import AutoencoderKLWan
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    from sfi_bench.models.semfi.wan_load import empty_model
    from sfi_bench.models.semfi.wan_official import clip_config, umt5_config, vae_config

    vae = empty_model(AutoencoderKLWan)  # diffusers' defaults are Wan2.1's VAE
    official = {wan_keys.vae_to_official(k, 2): v for k, v in vae.state_dict().items()}
    for wan, ours in [
        ("decoder.upsamples.3.resample.1.weight", "decoder.up_blocks.0.upsamplers.0.resample.1.weight"),
        ("decoder.upsamples.4.shortcut.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight"),
        ("decoder.upsamples.7.time_conv.weight", "decoder.up_blocks.1.upsamplers.0.time_conv.weight"),
        ("decoder.upsamples.11.resample.1.bias", "decoder.up_blocks.2.upsamplers.0.resample.1.bias"),
        ("decoder.upsamples.14.residual.6.bias", "decoder.up_blocks.3.resnets.2.conv2.bias"),
        ("encoder.downsamples.5.time_conv.bias", "encoder.down_blocks.5.time_conv.bias"),
    ]:
        assert wan in official and wan_keys.vae_to_diffusers(wan, 2) == ours
    assert "decoder.upsamples.11.time_conv.weight" not in official  # the last upsampling is spatial only
    config = vae_config(official)
    assert config == {k: vae.config[k] for k in config}
    assert config["dim_mult"] == [1, 2, 4, 4] and config["temperal_downsample"] == [False, True, True]

    xxl = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                     relative_attention_num_buckets=32, feed_forward_proj="gated-gelu")  # fmt: skip
    t5 = official_t5_state(empty_model(lambda: UMT5EncoderModel(xxl)))
    assert all(umt5_config(t5)[k] == getattr(xxl, k) for k in umt5_config(t5))
    vit_h = CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                             num_attention_heads=16, image_size=224, patch_size=14, hidden_act="gelu")  # fmt: skip
    clip = wan_keys.clip_to_official(empty_model(lambda: CLIPVisionModel(vit_h)).state_dict())
    assert all(clip_config(clip)[k] == getattr(vit_h, k) for k in clip_config(clip) if k != "projection_dim")


def test_wan_flf2v_from_an_official_folder_matches_its_diffusers_folder(tmp_path):
    folders = save_tiny_both_layouts(tmp_path, TinyWanConfig(flf2v=True, image_dim=160))
    frames = [
        make_model("wan-flf2v", device="cpu", weights=str(f), **FAST).generate(_request(4)).frames
        for f in folders
    ]
    assert np.array_equal(*frames)
    with pytest.raises(
        ValueError, match="wan-flf2v"
    ):  # the official FLF2V folder is still not a SemFi backbone
        make_model("semfi", device="cpu", weights=str(folders[1]), adapters="none", **FAST).load()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_a_diffusers_folders_umt5_loads_without_its_fp32_copy(tmp_path):
    """transformers' from_pretrained(dtype=bf16) peaks at fp32 + bf16 (docs/semfi.md); this loader at bf16 plus
    about one shard."""
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(vocab_size=16000, d_model=256, d_kv=32, d_ff=1024, num_layers=4, num_heads=8)
    UMT5EncoderModel(config).save_pretrained(tmp_path / "text_encoder", max_shard_size="10MB")
    run = subprocess.run(
        [sys.executable, "-m", "sfi_bench.models.semfi.load_ram", str(tmp_path), "--text-encoder"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(run.stdout)
    growth, model_bytes = report["peak_rss_growth_bytes"], report["loaded_bytes"]
    assert report["component"] == "text_encoder" and model_bytes == report["fp32_bytes"] // 2
    assert model_bytes <= growth < model_bytes + report["largest_shard_bytes"] + 12 * 2**20
