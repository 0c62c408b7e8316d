"""Build and save a tiny random-weight Wan2.1 I2V / FLF2V diffusers folder, same architecture as the 14B model.

Used by the tests and the CPU demo: every component class is the real one (WanTransformer3DModel,
AutoencoderKLWan, UMT5EncoderModel, CLIPVisionModel), only the widths and depths are small. Nothing is
downloaded: the tokenizer is a word-level `tokenizers` object built here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TINY_HEIGHT = 32  # a multiple of VAE stride (8) x patch (2)
TINY_WIDTH = 32
_TINY_WORDS = (
    "a the cat dog car walks runs turns jumps red blue into out of slowly fast scene camera moves".split()
)


@dataclass(frozen=True)
class TinyWanConfig:
    flf2v: bool = False  # True: FLF2V transformer (2 x CLIP tokens with a position embedding)
    num_layers: int = 2
    num_attention_heads: int = 2
    attention_head_dim: int = 8
    text_dim: int = 16
    image_dim: int = 8
    clip_image_size: int = 32
    clip_patch_size: int = 8
    seed: int = 0

    @property
    def clip_tokens(self) -> int:
        return (self.clip_image_size // self.clip_patch_size) ** 2 + 1


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(_TINY_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def build_tiny_wan_pipeline(config: TinyWanConfig = TinyWanConfig()):
    """A WanImageToVideoPipeline with random weights, seeded, in float32."""
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    torch.manual_seed(config.seed)
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    tokenizer = _tokenizer()
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=tokenizer.vocab_size,
            d_model=config.text_dim,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=config.image_dim,
            projection_dim=config.image_dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=config.clip_image_size,
            intermediate_size=16,
            patch_size=config.clip_patch_size,
            hidden_act="gelu",  # as Wan's ViT-H/14 (wan/modules/clip.py: activation='gelu')
        )
    )
    image_processor = CLIPImageProcessor(crop_size=config.clip_image_size, size=config.clip_image_size)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=config.num_attention_heads,
        attention_head_dim=config.attention_head_dim,
        in_channels=36,
        out_channels=16,
        text_dim=config.text_dim,
        freq_dim=32,
        ffn_dim=32,
        num_layers=config.num_layers,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=config.image_dim,
        pos_embed_seq_len=2 * config.clip_tokens if config.flf2v else None,
        # As in the 14B config: the image tokens get their own key/value projections in cross-attention.
        added_kv_proj_dim=config.num_attention_heads * config.attention_head_dim,
    )
    # The 14B checkpoints zero-initialise nothing here; random position embeddings keep FLF2V distinct.
    if config.flf2v:
        with torch.no_grad():
            transformer.condition_embedder.image_embedder.pos_embed.normal_(std=0.02)
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=3.0
    )
    return WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        image_processor=image_processor,
        image_encoder=image_encoder,
        transformer=transformer,
    )


def save_tiny_wan(folder: Path, config: TinyWanConfig = TinyWanConfig()) -> Path:
    """Write a loadable diffusers folder (model_index.json + components) and return it."""
    folder = Path(folder)
    build_tiny_wan_pipeline(config).save_pretrained(folder)
    return folder


def randomize_adapters(mol, std: float = 0.05, seed: int = 0) -> None:
    """Give every LoRA B matrix random values (fresh adapters have B = 0 and change nothing)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in mol.named_parameters().items():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def tiny_transformer_inputs(config: TinyWanConfig = TinyWanConfig(), seed: int = 0) -> dict:
    """Random keyword arguments for one forward of the tiny transformer (fp32; a 2x4x4 latent)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(1, 36, 2, 4, 4, generator=generator),
        timestep=torch.tensor([500.0]),
        encoder_hidden_states=torch.randn(1, 6, config.text_dim, generator=generator),
        encoder_hidden_states_image=torch.randn(1, config.clip_tokens, config.image_dim, generator=generator),
        return_dict=False,
    )


def save_tiny_semfi(folder: Path, config: TinyWanConfig = TinyWanConfig(), adapters: bool = True) -> Path:
    """A tiny I2V folder plus random (non-zero) MoL adapters in `<folder>/semfi_mol`; or an FLF2V folder."""
    from sfi_bench.models.semfi.model import ADAPTERS_SUBFOLDER
    from sfi_bench.models.semfi.mol import MixtureOfLoRA

    folder = save_tiny_wan(folder, config)
    if adapters and not config.flf2v:
        pipe = build_tiny_wan_pipeline(config)
        mol = MixtureOfLoRA.attach(pipe.transformer)
        randomize_adapters(mol, seed=config.seed)
        mol.save(folder / ADAPTERS_SUBFOLDER)
    return folder
