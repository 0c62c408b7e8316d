"""Peak host memory of loading a Wan transformer, measured on a folder or computed for Wan2.1-I2V-14B.

    python -m sfi_bench.models.semfi.load_ram FOLDER [--dtype bf16] [--device cuda]   # measure (Linux)
    python -m sfi_bench.models.semfi.load_ram --wan14b                                # compute

The measurement is the growth of this process's resident set (VmHWM after a reset) while the transformer
loads; a fresh process gives the cleanest number. It counts the file pages of the shard being read, which
are shared between processes reading the same file and which the kernel can drop.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sfi_bench.models.semfi.wan_load import peak_rss_growth, safetensors_files

# Wan2.1-I2V-14B-480P's transformer as diffusers configures it (scripts/convert_wan_to_diffusers.py,
# "Wan-I2V-14B-480p"); the official config.json says the same (dim 5120, ffn 13824, 40 heads, 40 layers).
WAN21_I2V_14B = {
    "patch_size": [1, 2, 2],
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
}
# The official repo splits the fp32 transformer into 7 files, the -Diffusers repo into 14.
OFFICIAL_SHARDS = 7


def transformer_sizes(config: dict) -> dict:
    """Parameter count, bytes at fp32/bf16 and the largest single tensor, from a config (nothing allocated)."""
    from diffusers import WanTransformer3DModel

    from sfi_bench.models.semfi.wan_load import empty_model

    model = empty_model(lambda: WanTransformer3DModel.from_config(config))
    numels = [p.numel() for p in model.parameters()]
    return {
        "params": sum(numels),
        "fp32_bytes": 4 * sum(numels),
        "bf16_bytes": 2 * sum(numels),
        "largest_tensor_fp32_bytes": 4 * max(numels),
    }


# wan/modules/t5.py umt5_xxl, encoder only (google/umt5-xxl).
UMT5_XXL = {"vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
            "relative_attention_num_buckets": 32}  # fmt: skip


def umt5_xxl_estimate() -> dict:
    """The same for the UMT5-XXL encoder; its largest tensor is the 256384 x 4096 token embedding."""
    from transformers import UMT5Config, UMT5EncoderModel

    from sfi_bench.models.semfi.wan_load import empty_model

    model = empty_model(lambda: UMT5EncoderModel(UMT5Config(**UMT5_XXL)))
    numels = [p.numel() for p in model.parameters()]
    sizes = {"params": sum(numels), "bf16_bytes": 2 * sum(numels), "fp32_bytes": 4 * sum(numels)}
    largest = 4 * max(numels)
    return sizes | {
        "largest_tensor_fp32_bytes": largest,
        # Plus the pages of the shard being read (its size depends on how the file was split).
        "peak_host_cpu_load_bytes_before_shard_pages": sizes["bf16_bytes"] + largest,
        "from_pretrained_peak_host_bytes_if_stored_fp32": sizes["fp32_bytes"] + sizes["bf16_bytes"],
    }


def wan14b_estimate() -> dict:
    """Peak host RAM per rank for Wan2.1-I2V-14B's transformer, computed as this loader holds it."""
    sizes = transformer_sizes(WAN21_I2V_14B)
    shard = sizes["fp32_bytes"] / OFFICIAL_SHARDS
    return sizes | {
        "largest_shard_bytes_approx": shard,
        # Loaded to the CPU: the bf16 model + one fp32 tensor being cast + the pages of the shard being read.
        "peak_host_cpu_load_bytes": sizes["bf16_bytes"] + sizes["largest_tensor_fp32_bytes"] + shard,
        # Loaded onto a GPU (semfi on cuda, train): one fp32 tensor + the shard's pages; the model is on the GPU.
        "peak_host_gpu_load_bytes": sizes["largest_tensor_fp32_bytes"] + shard,
        # Reading a shard whole in fp32, then casting (what a naive loader does): the fp32 model passes through.
        "naive_peak_host_bytes": sizes["fp32_bytes"] + sizes["bf16_bytes"],
    }


def _warm_up(transformer_folder: Path, device: str | None) -> None:
    """Import and initialise everything loading uses, so the measurement holds the weights, not the code."""
    import torch
    from diffusers import WanTransformer3DModel
    from safetensors import safe_open

    from sfi_bench.models.semfi.wan_load import empty_model

    config = {"num_layers": 1, "num_attention_heads": 1, "attention_head_dim": 16, "ffn_dim": 16}
    empty_model(lambda: WanTransformer3DModel.from_config(config | {"text_dim": 16, "freq_dim": 16}))
    with safe_open(str(safetensors_files(transformer_folder)[0]), framework="pt") as handle:
        handle.keys()
    torch.zeros(1, device=device or "cpu").to(torch.bfloat16)


def _warm_up_text_encoder(device: str | None) -> None:
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    from sfi_bench.models.semfi.wan_load import empty_model

    config = UMT5Config(vocab_size=8, d_model=8, d_kv=4, d_ff=8, num_layers=1, num_heads=2)
    empty_model(lambda: UMT5EncoderModel(config))
    torch.zeros(1, device=device or "cpu").to(torch.bfloat16)


def measure(
    folder: Path, dtype_name: str = "bf16", device: str | None = None, text_encoder: bool = False
) -> dict:
    """Load the transformer of `folder` (either layout), or with `text_encoder` the UMT5 of a diffusers
    folder's text_encoder/, and report its peak resident-set growth."""
    from sfi_bench.models.semfi.model import pick_dtype
    from sfi_bench.models.semfi.wan_official import (
        checkpoint_layout,
        load_diffusers_text_encoder,
        load_transformer,
    )

    folder = Path(folder)
    layout = checkpoint_layout(folder) or "diffusers"  # a folder holding only transformer/ counts too
    dtype = pick_dtype(dtype_name, device or "cpu")
    if text_encoder:
        part, stem = folder / "text_encoder", "model"
        _warm_up_text_encoder(device)
        load = lambda: load_diffusers_text_encoder(part, dtype, device)  # noqa: E731
    else:
        part, stem = (folder if layout == "official" else folder / "transformer"), "diffusion_pytorch_model"
        _warm_up(part, device)
        load = lambda: load_transformer(part, dtype, official=layout == "official", device=device)  # noqa: E731
    start = time.perf_counter()
    model, growth = peak_rss_growth(load)
    numels = [p.numel() for p in model.parameters()]
    loaded_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    shards = [path.stat().st_size for path in safetensors_files(part, stem)]
    return {
        "folder": str(folder),
        "component": "text_encoder" if text_encoder else "transformer",
        "layout": layout,
        "dtype": dtype_name,
        "device": device or "cpu",
        "params": sum(numels),
        "loaded_bytes": loaded_bytes,
        "fp32_bytes": 4 * sum(numels),
        "largest_shard_bytes": max(shards),
        "largest_tensor_fp32_bytes": 4 * max(numels),
        "peak_rss_growth_bytes": growth,
        "load_s": round(time.perf_counter() - start, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--device", default=None)
    parser.add_argument("--text-encoder", action="store_true", help="a diffusers folder's UMT5 instead")
    parser.add_argument("--wan14b", action="store_true", help="compute for Wan2.1-I2V-14B instead")
    args = parser.parse_args(argv)
    if args.wan14b:
        print(json.dumps({"transformer": wan14b_estimate(), "umt5_xxl": umt5_xxl_estimate()}, indent=2))
    elif args.folder is None:
        parser.error("give a FOLDER to measure, or --wan14b")
    else:
        print(json.dumps(measure(args.folder, args.dtype, args.device, args.text_encoder), indent=2))


if __name__ == "__main__":
    main()
