"""Encode a training manifest once: VAE latents, guidance latents, UMT5 and summed-CLIP states per clip.

An epoch over the cache decodes no video and runs no frozen encoder. One safetensors file per clip,
`<cache>/<clip_id>.safetensors`, written under a temporary name and renamed (sfi_core.manifest.atomic_path):
a finished file is the clip's completion marker, so an interrupted caching pass resumes where it stopped,
and every rank encodes its own share of the clips in parallel. `settings.json` records what shaped the
tensors; a rerun with other settings is refused instead of mixing old and new files.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from sfi_bench.models.semfi.conditioning import condition_latents, encode_video, summed_clip_embeds
from sfi_core.manifest import atomic_path

SETTINGS_FILE = "settings.json"
TENSORS = ("x0", "condition", "text", "image")


def to_uint8_images(images: torch.Tensor) -> list:
    """(B, 3, H, W) float [0, 1] -> list of uint8 (H, W, 3) arrays, what the CLIP processor gets at inference."""
    import numpy as np

    arrays = (images.clamp(0, 1) * 255).round().to("cpu", dtype=torch.uint8).numpy()
    return [np.ascontiguousarray(a.transpose(1, 2, 0)) for a in arrays]


@torch.no_grad()
def encode_items(pipe, items: list[dict], max_sequence_length: int, device) -> dict:
    """Frozen encoders on clips of one scale and size: target latents, conditioning, text, summed CLIP."""
    num_frames = {item["num_frames"] for item in items}
    if len(num_frames) != 1:
        raise ValueError(f"a batch must hold one scale, got frame counts {sorted(num_frames)}")
    (n,) = num_frames
    frames = torch.stack([item["frames"] for item in items]).to(device)  # (B, N, 3, H, W)
    first = torch.stack([item["first_frame"] for item in items]).to(device)
    last = torch.stack([item["last_frame"] for item in items]).to(device)
    x0 = encode_video(pipe.vae, frames.permute(0, 2, 1, 3, 4) * 2 - 1)
    condition = condition_latents(pipe.vae, first * 2 - 1, last * 2 - 1, n)
    text, _ = pipe.encode_prompt(
        [item["caption"] for item in items],
        do_classifier_free_guidance=False,
        max_sequence_length=max_sequence_length,
        device=device,
    )
    image = summed_clip_embeds(
        pipe.image_encoder, pipe.image_processor, to_uint8_images(first), to_uint8_images(last)
    )
    return {"x0": x0, "condition": condition, "text": text, "image": image, "num_frames": n}


class LatentCache:
    """The per-clip tensor files of one training manifest."""

    def __init__(self, folder: Path, settings: dict) -> None:
        self.folder = Path(folder)
        self.settings = settings

    def check_settings(self) -> None:
        """Record the settings on first use; refuse a cache made with different ones."""
        path = self.folder / SETTINGS_FILE
        if path.is_file():
            recorded = json.loads(path.read_text())
            if recorded != self.settings:
                raise ValueError(
                    f"{self.folder} was cached with {recorded}, not {self.settings}; use another --cache folder"
                )
            return
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.settings, indent=2, sort_keys=True))

    def path(self, clip_id: str) -> Path:
        return self.folder / f"{clip_id}.safetensors"

    def missing(self, clip_ids: list[str]) -> list[str]:
        return [clip_id for clip_id in clip_ids if not self.path(clip_id).is_file()]

    def write(self, clip_ids: list[str], encoded: dict) -> None:
        from safetensors.torch import save_file

        for i, clip_id in enumerate(clip_ids):
            tensors = {name: encoded[name][i].detach().cpu().contiguous() for name in TENSORS}
            with atomic_path(self.path(clip_id)) as tmp:
                save_file(tensors, str(tmp), metadata={"num_frames": str(encoded["num_frames"])})

    def read(self, clip_ids: list[str], device) -> dict:
        from safetensors import safe_open

        batch: dict[str, list] = {name: [] for name in TENSORS}
        frames = set()
        for clip_id in clip_ids:
            with safe_open(str(self.path(clip_id)), framework="pt", device="cpu") as fh:
                frames.add(int(fh.metadata()["num_frames"]))
                for name in TENSORS:
                    batch[name].append(fh.get_tensor(name))
        if len(frames) != 1:
            raise ValueError(f"a batch must hold one scale, got frame counts {sorted(frames)}")
        out = {name: torch.stack(values).to(device) for name, values in batch.items()}
        return out | {"num_frames": frames.pop()}

    def fill(
        self, pipe, dataset, indices: list[int], batch_size: int, max_sequence_length: int, device
    ) -> int:
        """Encode the clips among `indices` that have no file yet; returns how many were encoded."""
        todo = [i for i in indices if not self.path(dataset.rows[i]["clip_id"]).is_file()]
        keys = dataset.batch_keys
        groups: dict = {}
        for i in todo:
            groups.setdefault(keys[i], []).append(i)
        for members in groups.values():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                items = [dataset[i] for i in chunk]
                encoded = encode_items(pipe, items, max_sequence_length, device)
                self.write([item["clip_id"] for item in items], encoded)
        return len(todo)
