"""Key names of the official Wan2.1 checkpoints <-> the diffusers/transformers modules SemFi runs, both ways.

Every official name here was read from the official code (github.com/Wan-Video/Wan2.1): the transformer from
`wan/modules/model.py` (WanModel, WanAttentionBlock, WanI2VCrossAttention, Head, MLPProj), the VAE from
`wan/modules/vae.py` (WanVAE_, Encoder3d, Decoder3d, ResidualBlock, Resample, AttentionBlock), the text
encoder from `wan/modules/t5.py` (T5Encoder, T5SelfAttention, T5FeedForward) and the image encoder from
`wan/modules/clip.py` (XLMRobertaCLIP.visual = VisionTransformer). The diffusers side is what
WanTransformer3DModel, AutoencoderKLWan, UMT5EncoderModel and CLIPVisionModel define; diffusers'
`scripts/convert_wan_to_diffusers.py` makes the same transformer and VAE correspondence (its VAE table is
written out for the 14B VAE's two residual blocks per level; here the decoder index is computed from the
number of blocks, so the tiny VAE maps by the same rule).

A name that no rule covers raises UnmappedKeyError: a checkpoint from another model never loads half-way.
"""

from __future__ import annotations

import re

# The parameters one WanAttentionBlock of an I2V/FLF2V WanModel defines (qk_norm=True, cross_attn_norm=True):
# norm1/norm2 are WanLayerNorm(elementwise_affine=False) and have none; norm3 (before cross-attention) does.
OFFICIAL_BLOCK_KEYS = (
    "self_attn.q.weight", "self_attn.q.bias", "self_attn.k.weight", "self_attn.k.bias",
    "self_attn.v.weight", "self_attn.v.bias", "self_attn.o.weight", "self_attn.o.bias",
    "self_attn.norm_q.weight", "self_attn.norm_k.weight",
    "norm3.weight", "norm3.bias",
    "cross_attn.q.weight", "cross_attn.q.bias", "cross_attn.k.weight", "cross_attn.k.bias",
    "cross_attn.v.weight", "cross_attn.v.bias", "cross_attn.o.weight", "cross_attn.o.bias",
    "cross_attn.norm_q.weight", "cross_attn.norm_k.weight",
    "cross_attn.k_img.weight", "cross_attn.k_img.bias", "cross_attn.v_img.weight", "cross_attn.v_img.bias",
    "cross_attn.norm_k_img.weight",
    "ffn.0.weight", "ffn.0.bias", "ffn.2.weight", "ffn.2.bias",
    "modulation",
)  # fmt: skip

# Official module path -> diffusers module path (the parameter name after it is the same on both sides).
_BLOCK_MODULES = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    # Wan runs norm1 -> self-attn, norm3 -> cross-attn, norm2 -> ffn; diffusers numbers them in that order.
    "norm3": "norm2",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
}
_TOP_MODULES = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    # MLPProj: LayerNorm, Linear, GELU, Linear, LayerNorm.
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "head.head": "proj_out",
}
# Whole parameters (no module/parameter split).
_TOP_PARAMS = {
    "head.modulation": "scale_shift_table",
    "img_emb.emb_pos": "condition_embedder.image_embedder.pos_embed",  # FLF2V only
}
_PARAM = re.compile(r"(?P<module>.+)\.(?P<param>weight|bias|gamma)$")
_BLOCK = re.compile(r"blocks\.(?P<index>\d+)\.(?P<rest>.+)$")
# Checkpoints repackaged for ComfyUI carry this prefix on every transformer key.
COMFY_PREFIX = "model.diffusion_model."


class UnmappedKeyError(KeyError):
    """A checkpoint key that no rule maps: the file is not the Wan2.1 model this code knows."""


def _invert(table: dict[str, str]) -> dict[str, str]:
    inverse = {v: k for k, v in table.items()}
    if len(inverse) != len(table):
        raise RuntimeError("a key table maps two names to one")
    return inverse


def _rename(key: str, modules: dict[str, str], params: dict[str, str]) -> str | None:
    if key in params:
        return params[key]
    match = _PARAM.match(key)
    if match and match["module"] in modules:
        return f"{modules[match['module']]}.{match['param']}"
    return None


def _transformer_key(key: str, inverse: bool) -> str:
    block_modules = _invert(_BLOCK_MODULES) if inverse else _BLOCK_MODULES
    top_modules = _invert(_TOP_MODULES) if inverse else _TOP_MODULES
    top_params = _invert(_TOP_PARAMS) if inverse else _TOP_PARAMS
    block_params = {"scale_shift_table": "modulation"} if inverse else {"modulation": "scale_shift_table"}
    block = _BLOCK.match(key)
    if block:
        renamed = _rename(block["rest"], block_modules, block_params)
        if renamed is not None:
            return f"blocks.{block['index']}.{renamed}"
    else:
        renamed = _rename(key, top_modules, top_params)
        if renamed is not None:
            return renamed
    raise UnmappedKeyError(f"transformer key {key!r} has no {'official' if inverse else 'diffusers'} name")


def transformer_to_diffusers(key: str) -> str:
    return _transformer_key(key.removeprefix(COMFY_PREFIX), inverse=False)


def transformer_to_official(key: str) -> str:
    return _transformer_key(key, inverse=True)


# ---- VAE (Wan2.1_VAE.pth <-> AutoencoderKLWan) ----
# ResidualBlock.residual = Sequential(RMS_norm, SiLU, CausalConv3d, RMS_norm, SiLU, Dropout, CausalConv3d).
_RESIDUAL = {"residual.0": "norm1", "residual.2": "conv1", "residual.3": "norm2", "residual.6": "conv2"}
_RESIDUAL |= {"shortcut": "conv_shortcut"}
_KEPT = {"resample.1": "resample.1", "time_conv": "time_conv"}  # Resample: same names in diffusers
_VAE_TOP = {
    "conv1": "quant_conv",
    "conv2": "post_quant_conv",
    "encoder.conv1": "encoder.conv_in",
    "decoder.conv1": "decoder.conv_in",
    "encoder.head.0": "encoder.norm_out",
    "encoder.head.2": "encoder.conv_out",
    "decoder.head.0": "decoder.norm_out",
    "decoder.head.2": "decoder.conv_out",
}
# Encoder3d/Decoder3d.middle = Sequential(ResidualBlock, AttentionBlock, ResidualBlock).
_MIDDLE = {"0": "mid_block.resnets.0", "1": "mid_block.attentions.0", "2": "mid_block.resnets.1"}
_ATTENTION = {"norm": "norm", "to_qkv": "to_qkv", "proj": "proj"}


def _sub(rest: str, table: dict[str, str]) -> str | None:
    match = _PARAM.match(rest)
    if match and match["module"] in table:
        return f"{table[match['module']]}.{match['param']}"
    return None


def vae_to_diffusers(key: str, num_res_blocks: int) -> str:
    """Official VAE key -> AutoencoderKLWan key. The decoder's flat `upsamples` list holds, per level,
    num_res_blocks + 1 residual blocks and then (except in the last level) one Resample."""
    renamed = _sub(key, _VAE_TOP)
    if renamed:
        return renamed
    part = re.match(r"(?P<side>encoder|decoder)\.(?P<group>\w+)\.(?P<index>\d+)\.(?P<rest>.+)$", key)
    if part:
        side, group, index, rest = part["side"], part["group"], int(part["index"]), part["rest"]
        if group == "middle" and str(index) in _MIDDLE:
            table = _ATTENTION if index == 1 else _RESIDUAL
            inner = _sub(rest, table)
            if inner:
                return f"{side}.{_MIDDLE[str(index)]}.{inner}"
        elif side == "encoder" and group == "downsamples":
            inner = _sub(rest, _RESIDUAL) or _sub(rest, _KEPT)
            if inner:
                return f"encoder.down_blocks.{index}.{inner}"
        elif side == "decoder" and group == "upsamples":
            level, position = divmod(index, num_res_blocks + 2)
            if position <= num_res_blocks and (inner := _sub(rest, _RESIDUAL)):
                return f"decoder.up_blocks.{level}.resnets.{position}.{inner}"
            if position == num_res_blocks + 1 and (inner := _sub(rest, _KEPT)):
                return f"decoder.up_blocks.{level}.upsamplers.0.{inner}"
    raise UnmappedKeyError(f"VAE key {key!r} has no diffusers name")


def vae_to_official(key: str, num_res_blocks: int) -> str:
    renamed = _sub(key, _invert(_VAE_TOP))
    if renamed:
        return renamed
    middle = re.match(
        r"(?P<side>encoder|decoder)\.mid_block\.(?P<kind>resnets|attentions)\.(?P<i>\d)\.(?P<rest>.+)$", key
    )
    if middle:
        index = _invert(_MIDDLE).get(f"mid_block.{middle['kind']}.{middle['i']}")
        table = _ATTENTION if middle["kind"] == "attentions" else _invert(_RESIDUAL)
        inner = _sub(middle["rest"], table)
        if index is not None and inner:
            return f"{middle['side']}.middle.{index}.{inner}"
    down = re.match(r"encoder\.down_blocks\.(?P<i>\d+)\.(?P<rest>.+)$", key)
    if down:
        inner = _sub(down["rest"], _invert(_RESIDUAL)) or _sub(down["rest"], _KEPT)
        if inner:
            return f"encoder.downsamples.{down['i']}.{inner}"
    up = re.match(
        r"decoder\.up_blocks\.(?P<level>\d+)\.(?P<kind>resnets\.\d+|upsamplers\.0)\.(?P<rest>.+)$", key
    )
    if up:
        start = int(up["level"]) * (num_res_blocks + 2)
        if up["kind"].startswith("resnets"):
            inner = _sub(up["rest"], _invert(_RESIDUAL))
            index = start + int(up["kind"].split(".")[1])
        else:
            inner, index = _sub(up["rest"], _KEPT), start + num_res_blocks + 1
        if inner:
            return f"decoder.upsamples.{index}.{inner}"
    raise UnmappedKeyError(f"VAE key {key!r} has no official name")


# ---- UMT5 text encoder (models_t5_umt5-xxl-enc-bf16.pth <-> UMT5EncoderModel) ----
_T5_BLOCK = {
    "norm1": "layer.0.layer_norm",
    "attn.q": "layer.0.SelfAttention.q",
    "attn.k": "layer.0.SelfAttention.k",
    "attn.v": "layer.0.SelfAttention.v",
    "attn.o": "layer.0.SelfAttention.o",
    # umt5_xxl sets shared_pos=False: every block has its own relative position bias, as UMT5 does.
    "pos_embedding.embedding": "layer.0.SelfAttention.relative_attention_bias",
    "norm2": "layer.1.layer_norm",
    # T5FeedForward: fc2(fc1(x) * gate(x)), gate = Sequential(Linear, GELU) -> wo(wi_1(x) * gelu(wi_0(x))).
    "ffn.gate.0": "layer.1.DenseReluDense.wi_0",
    "ffn.fc1": "layer.1.DenseReluDense.wi_1",
    "ffn.fc2": "layer.1.DenseReluDense.wo",
}
_T5_TOP = {"token_embedding": "shared", "norm": "encoder.final_layer_norm"}
# UMT5EncoderModel lists the shared embedding under a second name; it is the same tensor.
T5_TIED = {"encoder.embed_tokens.weight": "shared.weight"}


def t5_to_diffusers(key: str) -> str:
    block = _BLOCK.match(key)
    renamed = _sub(block["rest"], _T5_BLOCK) if block else _sub(key, _T5_TOP)
    if renamed:
        return f"encoder.block.{block['index']}.{renamed}" if block else renamed
    raise UnmappedKeyError(f"T5 key {key!r} has no UMT5EncoderModel name")


def t5_to_official(key: str) -> str:
    block = re.match(r"encoder\.block\.(?P<index>\d+)\.(?P<rest>.+)$", key)
    renamed = _sub(block["rest"], _invert(_T5_BLOCK)) if block else _sub(key, _invert(_T5_TOP))
    if renamed:
        return f"blocks.{block['index']}.{renamed}" if block else renamed
    raise UnmappedKeyError(f"UMT5EncoderModel key {key!r} has no official name")


# ---- CLIP image encoder (models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth <-> CLIPVisionModel) ----
_CLIP_LAYER = {
    "norm1": "layer_norm1",
    "attn.proj": "self_attn.out_proj",
    "norm2": "layer_norm2",
    "mlp.0": "mlp.fc1",  # Sequential(Linear, GELU, Linear, Dropout)
    "mlp.2": "mlp.fc2",
}
_CLIP_TOP = {
    "visual.patch_embedding": "embeddings.patch_embedding",
    "visual.pre_norm": "pre_layrnorm",
    "visual.post_norm": "post_layernorm",
}
# Stored shapes differ: (1, 1, D) and (1, N, D) officially, (D,) and (N, D) in transformers.
_CLIP_RESHAPED = {
    "visual.cls_embedding": "embeddings.class_embedding",
    "visual.pos_embedding": "embeddings.position_embedding.weight",
}
# Parts of the official CLIP file that an image encoder has no use for: the text tower, the logit scale, and
# the projection head (Wan uses the hidden states before the last block, never the projected embedding).
CLIP_UNUSED_PREFIXES = ("textual.", "log_scale", "visual.head")
_QKV = re.compile(r"visual\.transformer\.(?P<index>\d+)\.attn\.to_qkv\.(?P<param>weight|bias)$")


def clip_is_unused(key: str) -> bool:
    return key.startswith(CLIP_UNUSED_PREFIXES)


def clip_to_diffusers(key: str, tensor):
    """(official key, tensor) -> [(CLIPVisionModel key, tensor)]: to_qkv splits into q, k and v (in that
    order: SelfAttention views its output as (b, s, 3, heads, head_dim))."""
    qkv = _QKV.match(key)
    if qkv:
        prefix = f"encoder.layers.{qkv['index']}.self_attn"
        return [
            (f"{prefix}.{name}_proj.{qkv['param']}", part)
            for name, part in zip("qkv", tensor.chunk(3), strict=True)
        ]
    if key in _CLIP_RESHAPED:
        return [
            (_CLIP_RESHAPED[key], tensor.reshape(tensor.shape[-2:] if key.endswith("pos_embedding") else -1))
        ]
    layer = re.match(r"visual\.transformer\.(?P<index>\d+)\.(?P<rest>.+)$", key)
    renamed = _sub(layer["rest"], _CLIP_LAYER) if layer else _sub(key, _CLIP_TOP)
    if renamed:
        return [(f"encoder.layers.{layer['index']}.{renamed}" if layer else renamed, tensor)]
    raise UnmappedKeyError(f"CLIP key {key!r} has no CLIPVisionModel name")


def clip_to_official(state_dict: dict) -> dict:
    """CLIPVisionModel state dict -> the official `visual.*` tensors (q, k, v merge back into to_qkv)."""
    import torch

    official = {}
    reshaped = _invert(_CLIP_RESHAPED)
    for key, tensor in state_dict.items():
        attn = re.match(r"encoder\.layers\.(?P<i>\d+)\.self_attn\.[qkv]_proj\.(?P<param>weight|bias)$", key)
        if attn:
            prefix = f"encoder.layers.{attn['i']}.self_attn"
            parts = [state_dict[f"{prefix}.{n}_proj.{attn['param']}"] for n in "qkv"]
            official[f"visual.transformer.{attn['i']}.attn.to_qkv.{attn['param']}"] = torch.cat(parts)
        elif key in reshaped:
            official[reshaped[key]] = tensor.reshape((1, *tensor.shape) if tensor.dim() == 2 else (1, 1, -1))
        else:
            layer = re.match(r"encoder\.layers\.(?P<i>\d+)\.(?P<rest>.+)$", key)
            renamed = _sub(layer["rest"], _invert(_CLIP_LAYER)) if layer else _sub(key, _invert(_CLIP_TOP))
            if renamed is None:
                raise UnmappedKeyError(f"CLIPVisionModel key {key!r} has no official name")
            official[f"visual.transformer.{layer['i']}.{renamed}" if layer else renamed] = tensor
    return official
