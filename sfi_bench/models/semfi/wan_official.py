"""The official Wan2.1 checkpoint folder (what Wan's own generate.py reads) as a diffusers Wan pipeline.

`Wan-AI/Wan2.1-I2V-14B-480P` (and the FLF2V-14B-720P one) hold the transformer as
`diffusion_pytorch_model-0000X-of-00007.safetensors` + its index + `config.json` (WanModel's own config),
the VAE, UMT5 and CLIP as `.pth` files, and the UMT5 tokenizer in `google/umt5-xxl/`. This module detects
that layout, builds each component empty from what the files and Wan's code say (wan/configs and
wan/modules: the shapes give every width and depth; the rest is fixed by Wan2.1), fills it tensor by tensor
in its load dtype (`wan_load`) under the diffusers names (`wan_keys`), and hands the pipeline class the
components. The same code reads a diffusers folder's transformer, so neither layout ever holds a float32
copy of the 14B transformer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sfi_bench.models.semfi import wan_keys
from sfi_bench.models.semfi.wan_load import (
    CheckpointMismatchError,
    empty_model,
    fill_model,
    load_pth,
    read_pth,
    read_safetensors,
    safetensors_files,
    safetensors_shapes,
)
from sfi_core.weights import WeightsMissingError

# wan/configs/wan_i2v_14B.py: the file names generate.py joins to --ckpt_dir.
CONFIG_FILE = "config.json"
VAE_FILE = "Wan2.1_VAE.pth"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
CLIP_FILE = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
TOKENIZER_DIR = "google/umt5-xxl"
OFFICIAL_FILES = {
    CONFIG_FILE: "transformer config (WanModel)",
    VAE_FILE: "VAE",
    T5_FILE: "text encoder (UMT5-XXL encoder, bf16)",
    CLIP_FILE: "image encoder (open-clip XLM-RoBERTa ViT-H/14)",
    TOKENIZER_DIR: "UMT5 tokenizer (folder)",
}
OFFICIAL_REPOS = {"i2v": "Wan-AI/Wan2.1-I2V-14B-480P", "flf2v": "Wan-AI/Wan2.1-FLF2V-14B-720P"}
# Fixed by Wan2.1, not by the files: clip.py's ViT-H/14 has 16 heads of 80 channels and exact GELU; the
# transformer's RoPE table covers 1024 positions (model.py rope_params); the scheduler is the one the
# -Diffusers repos ship (UniPC, flow prediction, shift 3; sampling sets the shift per task).
CLIP_HEAD_DIM = 80
CLIP_ACTIVATION = "gelu"
ROPE_MAX_SEQ_LEN = 1024


def checkpoint_layout(folder: Path) -> str | None:
    """'diffusers' (model_index.json), 'official' (Wan's own file names), or None."""
    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return "diffusers"
    if any((folder / name).exists() for name in (VAE_FILE, T5_FILE, CLIP_FILE)) or safetensors_files(folder):
        return "official"
    return None


def missing_official_files(folder: Path) -> list[str]:
    folder = Path(folder)
    missing = [f"{name} ({what})" for name, what in OFFICIAL_FILES.items() if not (folder / name).exists()]
    if not safetensors_files(folder):
        missing.insert(
            0, "diffusion_pytorch_model-0000X-of-0000N.safetensors + its .index.json (transformer)"
        )
    return missing


def official_repo(folder: Path) -> str:
    """The Hub repo of an official folder, by its config's model_type (I2V when it cannot tell)."""
    config = Path(folder) / CONFIG_FILE
    model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
    return OFFICIAL_REPOS.get(model_type, OFFICIAL_REPOS["i2v"])


def require_official_files(folder: Path) -> None:
    missing = missing_official_files(folder)
    if missing:
        raise WeightsMissingError(
            f"{folder} is an incomplete official Wan2.1 folder; missing:\n  " + "\n  ".join(missing) + "\n"
            f"Get the whole folder with: hf download {official_repo(folder)} --local-dir {folder}  "
            f"(or use the -Diffusers repo of the same model)."
        )


def transformer_config(official: dict, shapes: dict[str, tuple[int, ...]]) -> dict:
    """WanTransformer3DModel config from WanModel's config.json and the tensor shapes. WanModel does not
    write patch_size, text_dim, qk_norm or cross_attn_norm (its ignore_for_config): the shapes give the
    first two, and Wan2.1's 14B models set both norms."""
    dim, heads = official["dim"], official["num_heads"]
    # The image projection's presence says I2V/FLF2V whatever model_type says (a missing one means t2v).
    has_image = "img_emb.proj.0.weight" in shapes
    emb_pos = shapes.get("img_emb.emb_pos")
    patch = shapes["patch_embedding.weight"][2:]
    return {
        "patch_size": list(patch),
        "num_attention_heads": heads,
        "attention_head_dim": dim // heads,
        "in_channels": official.get("in_dim", shapes["patch_embedding.weight"][1]),
        "out_channels": official.get("out_dim", shapes["head.head.weight"][0] // math.prod(patch)),
        "text_dim": shapes["text_embedding.0.weight"][1],
        "freq_dim": official.get("freq_dim", shapes["time_embedding.0.weight"][1]),
        "ffn_dim": official["ffn_dim"],
        "num_layers": official["num_layers"],
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": official.get("eps", 1e-6),
        "image_dim": shapes["img_emb.proj.0.weight"][0] if has_image else None,
        "added_kv_proj_dim": dim if has_image else None,
        "rope_max_seq_len": ROPE_MAX_SEQ_LEN,
        "pos_embed_seq_len": emb_pos[1] if emb_pos else None,
    }


def vae_config(state: dict) -> dict:
    """AutoencoderKLWan config from the official VAE's keys and shapes: Encoder3d's flat `downsamples` is
    num_res_blocks ResidualBlocks per level, a Resample between levels (with a time_conv where it also
    halves time)."""
    indices = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.downsamples.")})
    resamples = [i for i in indices if f"encoder.downsamples.{i}.resample.1.weight" in state]
    num_res_blocks = resamples[0] if resamples else len(indices)
    base_dim = state["encoder.conv1.weight"].shape[0]
    level_starts = [0] + [r + 1 for r in resamples]
    dim_mult = [
        state[f"encoder.downsamples.{s}.residual.2.weight"].shape[0] // base_dim for s in level_starts
    ]
    return {
        "base_dim": base_dim,
        "z_dim": state["conv2.weight"].shape[0],
        "dim_mult": dim_mult,
        "num_res_blocks": num_res_blocks,
        "attn_scales": [],
        "temperal_downsample": [f"encoder.downsamples.{r}.time_conv.weight" in state for r in resamples],
    }


def umt5_config(state: dict) -> dict:
    """UMT5Config from the official encoder's shapes (t5.py umt5_xxl: gated GELU, one position bias per block)."""
    blocks = {int(k.split(".")[1]) for k in state if k.startswith("blocks.")}
    buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
    vocab, d_model = state["token_embedding.weight"].shape
    return {
        "vocab_size": vocab,
        "d_model": d_model,
        "d_kv": state["blocks.0.attn.q.weight"].shape[0] // heads,
        "d_ff": state["blocks.0.ffn.fc1.weight"].shape[0],
        "num_layers": len(blocks),
        "num_heads": heads,
        "relative_attention_num_buckets": buckets,
        "feed_forward_proj": "gated-gelu",
        "pad_token_id": 0,
        "eos_token_id": 1,
    }


def clip_config(state: dict) -> dict:
    """CLIPVisionConfig from the official visual tower's shapes (clip.py VisionTransformer, pool 'token')."""
    hidden, _, patch, _ = state["visual.patch_embedding.weight"].shape
    positions = state["visual.pos_embedding"].shape[1]
    layers = {int(k.split(".")[2]) for k in state if k.startswith("visual.transformer.")}
    if hidden % CLIP_HEAD_DIM:
        raise ValueError(f"CLIP width {hidden} is not a multiple of ViT-H/14's head size {CLIP_HEAD_DIM}")
    return {
        "hidden_size": hidden,
        "intermediate_size": state["visual.transformer.0.mlp.0.weight"].shape[0],
        "num_hidden_layers": len(layers),
        "num_attention_heads": hidden // CLIP_HEAD_DIM,
        "image_size": math.isqrt(positions - 1) * patch,
        "patch_size": patch,
        "hidden_act": CLIP_ACTIVATION,
        "layer_norm_eps": 1e-5,
        "projection_dim": state["visual.head"].shape[1] if "visual.head" in state else hidden,
    }


def load_transformer(folder: Path, dtype, official: bool, device=None):
    """WanTransformer3DModel from a transformer folder (official root or diffusers `transformer/`), filled in
    `dtype` tensor by tensor."""
    from diffusers import WanTransformer3DModel

    folder = Path(folder)
    files = safetensors_files(folder)
    if not files:
        raise WeightsMissingError(f"no diffusion_pytorch_model*.safetensors in {folder}")
    if official:
        shapes = {wan_keys.transformer_to_official(wan_keys.transformer_to_diffusers(k)): s
                  for k, s in safetensors_shapes(files).items()}  # fmt: skip
        config = transformer_config(json.loads((folder / CONFIG_FILE).read_text()), shapes)
    else:
        config = WanTransformer3DModel.load_config(folder)
    model = empty_model(lambda: WanTransformer3DModel.from_config(config))
    rename = (
        (lambda k, t: [(wan_keys.transformer_to_diffusers(k), t)]) if official else (lambda k, t: [(k, t)])
    )
    fill_model(model, read_safetensors(files), rename, dtype, device=device)
    return model.eval()


def load_vae(path: Path, device=None):
    import torch
    from diffusers import AutoencoderKLWan

    config = vae_config(load_pth(path))
    model = empty_model(lambda: AutoencoderKLWan(**config))
    blocks = config["num_res_blocks"]
    rename = lambda k, t: [(wan_keys.vae_to_diffusers(k, blocks), t)]  # noqa: E731
    fill_model(model, read_pth(path), rename, torch.float32, device=device)
    return model.eval()


def load_umt5(path: Path, dtype, device=None):
    from transformers import UMT5Config, UMT5EncoderModel

    config = UMT5Config(**umt5_config(load_pth(path)))
    model = empty_model(lambda: UMT5EncoderModel(config))
    rename = lambda k, t: [(wan_keys.t5_to_diffusers(k), t)]  # noqa: E731
    fill_model(model, read_pth(path), rename, dtype, aliases=wan_keys.T5_TIED, device=device)
    return model.eval()


def load_clip(path: Path, device=None):
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(**clip_config(load_pth(path)))
    model = empty_model(lambda: CLIPVisionModel(config))
    tensors = ((k, t, p) for k, t, p in read_pth(path) if not wan_keys.clip_is_unused(k))
    fill_model(model, tensors, wan_keys.clip_to_diffusers, torch.float32, device=device)
    return model.eval(), config.image_size


def official_components(folder: Path, dtype, device=None) -> dict:
    """Every component of a Wan I2V/FLF2V pipeline, from an official folder: the transformer and UMT5 in
    `dtype`, the VAE and CLIP in float32 (as `model.component_dtypes` loads a diffusers folder)."""
    from diffusers import UniPCMultistepScheduler
    from transformers import AutoTokenizer, CLIPImageProcessor

    folder = Path(folder)
    require_official_files(folder)
    image_encoder, image_size = load_clip(folder / CLIP_FILE, device)
    return {
        "transformer": load_transformer(folder, dtype, official=True, device=device),
        "vae": load_vae(folder / VAE_FILE, device),
        "text_encoder": load_umt5(folder / T5_FILE, dtype, device),
        "tokenizer": AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR)),
        "image_encoder": image_encoder,
        "image_processor": CLIPImageProcessor(crop_size=image_size, size=image_size),
        "scheduler": UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
        ),
    }


def load_diffusers_text_encoder(folder: Path, dtype, device=None):
    """A diffusers folder's `text_encoder/` (UMT5EncoderModel, 5.7 B parameters at 14B) filled tensor by
    tensor: transformers' from_pretrained peaks at the fp32 model plus the cast one (docs/semfi.md)."""
    from transformers import UMT5Config, UMT5EncoderModel

    files = safetensors_files(folder, stem="model")
    if not files:
        raise CheckpointMismatchError(f"no model*.safetensors in {folder}")
    stored = set(safetensors_shapes(files))
    config = UMT5Config.from_pretrained(str(folder))
    model = empty_model(lambda: UMT5EncoderModel(config))

    def rename(key, tensor):
        # The tied embedding is stored under one of its two names (normally shared.weight).
        canonical = wan_keys.T5_TIED.get(key, key)
        return [] if canonical != key and canonical in stored else [(canonical, tensor)]

    fill_model(model, read_safetensors(files), rename, dtype, aliases=wan_keys.T5_TIED, device=device)
    return model.eval()


def _diffusers_components(folder: Path, dtype, device) -> dict:
    """The components of a diffusers folder read here rather than by from_pretrained: the transformer
    always, UMT5 when its files hold exactly its parameters (else from_pretrained loads it, with a warning)."""
    import warnings

    components = {
        "transformer": load_transformer(folder / "transformer", dtype, official=False, device=device)
    }
    index = json.loads((folder / "model_index.json").read_text())
    if index.get("text_encoder", [None, None])[1] == "UMT5EncoderModel":
        try:
            components["text_encoder"] = load_diffusers_text_encoder(folder / "text_encoder", dtype, device)
        except CheckpointMismatchError as err:
            warnings.warn(f"{err}; loading the text encoder with from_pretrained instead", stacklevel=3)
    return components


def load_pipeline(pipeline_class, folder: Path, component_dtypes: dict, device=None):
    """A Wan pipeline from either layout; the transformer is always read tensor by tensor in its dtype and
    put on `device` as it is read (None: the CPU); so are the official folder's other components and a
    diffusers folder's UMT5."""
    folder = Path(folder)
    dtype = component_dtypes["default"]
    if checkpoint_layout(folder) == "official":
        return pipeline_class(**official_components(folder, dtype, device))
    components = _diffusers_components(folder, dtype, device)
    return pipeline_class.from_pretrained(str(folder), **components, dtype=component_dtypes)


def convert_official_folder(source: Path, target: Path, dtype, max_shard_size: str = "5GB") -> Path:
    """Write an official Wan2.1 folder as a diffusers folder (the transformer and UMT5 in `dtype`, the VAE
    and CLIP in float32). It is built under a temporary name and renamed when complete."""
    import shutil

    from diffusers import WanImageToVideoPipeline

    source, target = Path(source), Path(target)
    if checkpoint_layout(source) != "official":
        raise WeightsMissingError(
            f"{source} is not an official Wan2.1 folder (no {VAE_FILE}, no transformer shards)"
            + (": it is a diffusers folder already, nothing to convert" if checkpoint_layout(source) else "")
        )
    if target.exists():
        raise FileExistsError(f"{target} exists; give a new folder (nothing was written)")
    pipe = WanImageToVideoPipeline(**official_components(source, dtype))
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    pipe.save_pretrained(str(partial), max_shard_size=max_shard_size)
    partial.rename(target)
    return target
