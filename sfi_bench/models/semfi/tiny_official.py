"""Write a tiny random-weight Wan2.1 model in the official layout (Wan's file names and key names).

The same weights are written as a diffusers folder too, so a test can load both layouts and compare. The
official names come from inverting `wan_keys` over the tiny diffusers model: a test checks them against the
names Wan's WanModel defines (wan_keys.OFFICIAL_BLOCK_KEYS) and that nothing is left over either way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sfi_bench.models.semfi import wan_keys
from sfi_bench.models.semfi.tiny import TinyWanConfig, build_tiny_wan_pipeline
from sfi_bench.models.semfi.wan_load import SAFETENSORS_INDEX
from sfi_bench.models.semfi.wan_official import CLIP_FILE, T5_FILE, TOKENIZER_DIR, VAE_FILE

# ViT-H/14 has 80-channel heads (wan_official.CLIP_HEAD_DIM): the tiny CLIP's 2 heads need 160 channels.
TINY_OFFICIAL = TinyWanConfig(image_dim=160)


def official_transformer_state(transformer) -> dict:
    return {wan_keys.transformer_to_official(k): v for k, v in transformer.state_dict().items()}


def official_vae_state(vae) -> dict:
    blocks = vae.config.num_res_blocks
    return {wan_keys.vae_to_official(k, blocks): v for k, v in vae.state_dict().items()}


def official_t5_state(text_encoder) -> dict:
    state = text_encoder.state_dict()
    return {wan_keys.t5_to_official(k): v for k, v in state.items() if k not in wan_keys.T5_TIED}


def official_clip_state(image_encoder, seed: int = 0) -> dict:
    """The visual tower under its official names, plus what the official file also holds and an image
    encoder never uses (projection head, logit scale, a text tower): random here, dropped on load."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    hidden = image_encoder.config.hidden_size
    extra = {
        "visual.head": torch.randn(hidden, image_encoder.config.projection_dim, generator=generator),
        "log_scale": torch.tensor(math.log(1 / 0.07)),
        "textual.token_embedding.weight": torch.randn(12, 8, generator=generator),
        "textual.norm.weight": torch.ones(8),
        "textual.head.0.weight": torch.randn(8, 8, generator=generator),
    }
    return wan_keys.clip_to_official(image_encoder.state_dict()) | extra


def official_config(transformer, flf2v: bool) -> dict:
    """WanModel's config.json as the official repos have it (no patch_size / text_dim: WanModel ignores them)."""
    c = transformer.config
    return {
        "_class_name": "WanModel",
        "_diffusers_version": "0.30.0",
        "model_type": "flf2v" if flf2v else "i2v",
        "dim": c.num_attention_heads * c.attention_head_dim,
        "ffn_dim": c.ffn_dim,
        "freq_dim": c.freq_dim,
        "in_dim": c.in_channels,
        "num_heads": c.num_attention_heads,
        "num_layers": c.num_layers,
        "out_dim": c.out_channels,
        "text_len": 512,
        "eps": c.eps,
    }


def write_transformer_shards(state: dict, folder: Path, num_shards: int) -> list[Path]:
    """`diffusion_pytorch_model-0000i-of-0000K.safetensors` + the index, keys split evenly in order."""
    from safetensors.torch import save_file

    keys = list(state)
    per_shard = math.ceil(len(keys) / num_shards)
    weight_map, paths = {}, []
    for i in range(num_shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{num_shards:05d}.safetensors"
        chunk = {k: state[k].contiguous() for k in keys[i * per_shard : (i + 1) * per_shard]}
        save_file(chunk, str(folder / name))
        weight_map |= dict.fromkeys(chunk, name)
        paths.append(folder / name)
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / SAFETENSORS_INDEX).write_text(json.dumps(index, indent=2))
    return paths


def write_official_folder(pipe, folder: Path, flf2v: bool = False, num_shards: int = 3) -> Path:
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_transformer_shards(official_transformer_state(pipe.transformer), folder, num_shards)
    (folder / "config.json").write_text(json.dumps(official_config(pipe.transformer, flf2v), indent=2))
    torch.save(official_vae_state(pipe.vae), folder / VAE_FILE)
    t5 = {k: v.to(torch.bfloat16) for k, v in official_t5_state(pipe.text_encoder).items()}
    torch.save(t5, folder / T5_FILE)
    torch.save(official_clip_state(pipe.image_encoder), folder / CLIP_FILE)
    pipe.tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))
    return folder


def save_tiny_both_layouts(root: Path, config: TinyWanConfig = TINY_OFFICIAL, num_shards: int = 3):
    """(diffusers folder, official folder) holding the same tiny weights. UMT5 is rounded to bf16 first:
    the official file is bf16 (`-enc-bf16.pth`), so both folders then hold the very same values."""
    import torch

    pipe = build_tiny_wan_pipeline(config)
    with torch.no_grad():
        for param in pipe.text_encoder.parameters():
            param.copy_(param.to(torch.bfloat16).to(param.dtype))
    root = Path(root)
    diffusers_folder = root / "diffusers"
    pipe.save_pretrained(str(diffusers_folder))
    official_folder = write_official_folder(
        pipe, root / "official", flf2v=config.flf2v, num_shards=num_shards
    )
    return diffusers_folder, official_folder
