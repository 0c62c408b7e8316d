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
    source: str  # "hf:<repo_id>" or "url:<https url>"
    license: str
    purpose: str
    sha256: str | None = None  # full digest, or None where the publisher gives only a prefix
    sha256_prefix: str | None = None  # torchvision convention: the first hex digits in the file name

    @property
    def hf_repo(self) -> str | None:
        return self.source.removeprefix("hf:") if self.source.startswith("hf:") else None

    @property
    def url(self) -> str | None:
        return self.source.removeprefix("url:") if self.source.startswith("url:") else None

    def how_to_get(self) -> str:
        if self.hf_repo:
            return (f"huggingface-cli download {self.hf_repo} {self.filename}  "
                    f"(or put the file in --weights-dir)")
        return (f"curl -L -o \"{torch_checkpoint_dir() / self.filename}\" {self.url}  "
                f"(or put the file in --weights-dir)")


# Add new networks here, nowhere else.
WEIGHTS: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in [
        WeightSpec("clip-vit-b-32-openai", "open_clip_model.safetensors",
                   "hf:timm/vit_base_patch32_clip_224.openai", "MIT (OpenAI CLIP)",
                   "sfi_data first/last CLIP similarity (open_clip ViT-B-32, openai)"),
        WeightSpec("clip-vit-l-14-openai", "open_clip_model.safetensors",
                   "hf:timm/vit_large_patch14_clip_224.openai", "MIT (OpenAI CLIP)",
                   "CLIP ViT-L/14 image features (aesthetic quality; optional first/last similarity)"),
        WeightSpec("raft_large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                   "url:https://download.pytorch.org/models/raft_large_C_T_SKHT_V2-ff5fadd5.pth",
                   "BSD-3-Clause (torchvision)", "RAFT optical flow (flow score, dynamic degree)",
                   sha256_prefix="ff5fadd5"),
        WeightSpec("raft_small", "raft_small_C_T_V2-01064c6d.pth",
                   "url:https://download.pytorch.org/models/raft_small_C_T_V2-01064c6d.pth",
                   "BSD-3-Clause (torchvision)", "RAFT-small optical flow (faster flow score)",
                   sha256_prefix="01064c6d"),
    ]
}


class WeightsMissingError(FileNotFoundError):
    """A pretrained file is not on disk; the message says where we looked and how to get it."""


def hf_home() -> Path:
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))


def torch_checkpoint_dir() -> Path:
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                                     / "torch"))
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
    if spec.hf_repo:
        cache = Path(os.environ.get("HF_HUB_CACHE", hf_home() / "hub"))
        places.append(cache / f"models--{spec.hf_repo.replace('/', '--')}" / "snapshots" / "*" / spec.filename)
    else:
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
