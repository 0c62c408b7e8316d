"""Semantic fidelity: ViCLIP text–video cosine (InternVideo's ViClip-InternVid-10M-FLT), VBench-style input.

8 frames by uniform 'middle' sampling (the video split into 8 equal intervals, the middle frame of
each; padded with the last index for shorter clips), VBench's clip_transform(224) on the uint8 frames
(bicubic resize of the shorter side with antialias=False, as VBench 0.1.5, centre crop, /255, CLIP mean/std), raw cosine between
the L2-normalised video and text features. The ViCLIP network code and tokenizer come from the optional
`vbench` package; the weights from the weights table (loaded with weights_only=True).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfi_bench.metrics.aesthetic_quality import CLIP_MEAN, CLIP_SIZE, CLIP_STD
from sfi_bench.metrics.base import ClipSample, MeanMetric, MetricUnavailable, require_package, require_weights

NUM_FRAMES = 8
VBENCH_PIP = "pip install einops && pip install --no-deps vbench==0.1.5  (ViCLIP network code)"


def middle_indices(num_samples: int, num_frames: int) -> list[int]:
    """VBench get_frame_indices(sample='middle'): middle of each of `num_samples` equal intervals."""
    count = min(num_samples, num_frames)
    edges = np.linspace(0, num_frames, num=count + 1).astype(int)
    indices = [int((start + stop - 1) // 2) for start, stop in zip(edges[:-1], edges[1:], strict=True)]
    return indices + [indices[-1]] * (num_samples - len(indices))


def viclip_preprocess(frames: np.ndarray, device: str = "cpu"):
    """uint8 (T, H, W, 3) -> (1, T, 3, 224, 224): clip_transform applied to a uint8 tensor, as VBench does."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2)
    x = TF.resize(x, CLIP_SIZE, interpolation=InterpolationMode.BICUBIC, antialias=False)
    x = TF.center_crop(x, CLIP_SIZE).float() / 255.0
    return TF.normalize(x, CLIP_MEAN, CLIP_STD).unsqueeze(0)


def text_video_cosine(model, pixels, prompt: str) -> float:
    import torch

    with torch.inference_mode():
        video = model.encode_vision(pixels, test=True).float()
        text = model.encode_text(prompt).float()
    video = video / video.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return float((video @ text.T)[0, 0])


def provide_pkg_resources() -> None:
    """ViCLIP's text module does `from pkg_resources import packaging` (for a torch version check), and
    setuptools 81+ no longer ships pkg_resources: hand it the `packaging` it asks for."""
    import importlib.util
    import sys
    import types

    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return
    import packaging.version

    shim = types.ModuleType("pkg_resources")
    shim.packaging = packaging  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim


def provide_vbench_vocab(vocab: Path) -> None:
    """ViCLIP's text encoder opens the BPE vocabulary at VBench's cache path ($VBENCH_CACHE_DIR, else
    ~/.cache/vbench), and VBench's tokenizer module runs wget for it on import when it is absent: put
    the weights table's copy there first, so nothing is fetched and the same vocabulary is used."""
    import shutil

    utils = require_package("vbench.utils", VBENCH_PIP)
    target = Path(utils.CACHE_DIR) / "ViCLIP" / "bpe_simple_vocab_16e6.txt.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(vocab, target)


def load_viclip(path, vocab, device: str):
    import torch

    provide_pkg_resources()
    provide_vbench_vocab(Path(vocab))
    viclip = require_package("vbench.third_party.ViCLIP.viclip", VBENCH_PIP)
    tokenizer_module = require_package("vbench.third_party.ViCLIP.simple_tokenizer", VBENCH_PIP)
    model = viclip.ViCLIP(tokenizer=tokenizer_module.SimpleTokenizer(str(vocab)), pretrain=None)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    missing, _unexpected = model.load_state_dict(checkpoint.get("model", checkpoint), strict=False)
    if missing:
        raise MetricUnavailable(
            f"{path} does not fit ViCLIP: missing {len(missing)} keys, e.g. {missing[:3]}"
        )
    return model.to(device).eval()


class ViCLIPScore(MeanMetric):
    name = "viclip"
    label_text = "Semantic Fidelity"
    direction = "higher"
    version = "vbench-0.1.5 overall_consistency (ViClip-InternVid-10M-FLT, 8 frames middle sampling, 224 px, raw cosine, eval mode)"
    group = "Semantic Fidelity"
    weights = ("viclip-internvid-10m-flt", "clip-bpe-vocab")

    def __init__(self, device: str = "auto", weights_dir=None, model=None) -> None:
        super().__init__(device, weights_dir)
        self.model = model

    def load(self) -> None:
        if self.model is None:
            path = require_weights(self.weights[0], self.weights_dir)
            vocab = require_weights(self.weights[1], self.weights_dir)
            self.model = load_viclip(path, vocab, self.device)

    def empty_reason(self) -> str:
        return "no clips with a prompt"

    def clip_value(self, sample: ClipSample) -> tuple[float, float] | None:
        if self.model is None:
            raise MetricUnavailable(f"{self.name}: call load() first")
        if not sample.prompt:
            return None
        frames = sample.generated[middle_indices(NUM_FRAMES, len(sample.generated))]
        return text_video_cosine(self.model, viclip_preprocess(frames, self.device), sample.prompt), 1.0
