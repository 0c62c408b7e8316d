"""Similarity of the first and last frame: CLIP (the paper's) or a weight-free HSV-histogram cosine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfi_core.weights import resolve
from sfi_data.config import ScoreConfig

# open_clip (model, pretrained tag) -> our weights-table entry.
CLIP_WEIGHTS = {
    ("ViT-B-32", "openai"): "clip-vit-b-32-openai",
    ("ViT-L-14", "openai"): "clip-vit-l-14-openai",
}


class SimilarityScorer:
    name: str

    def score(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
        raise NotImplementedError


class HsvHistogramSimilarity(SimilarityScorer):
    """Cosine of 8x8x8 HSV colour histograms: weight-free, colour/layout-blind, *not* CLIP.

    It moves with the same things CLIP similarity moves with in practice (scene and lighting change)
    and lets the whole pipeline run where no CLIP weights exist.
    """

    name = "hsv-hist-cosine"
    bins = (8, 8, 8)

    def _hist(self, image: np.ndarray) -> np.ndarray:
        import cv2

        hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(self.bins), [0, 180, 0, 256, 0, 256])
        return hist.ravel().astype(np.float64)

    def score(self, pairs):
        out = []
        for first, last in pairs:
            a, b = self._hist(first), self._hist(last)
            denom = np.linalg.norm(a) * np.linalg.norm(b)
            # A cosine lies in [-1, 1]; float rounding can step past it (1.0000001), so clamp.
            out.append(float(np.clip(a @ b / denom, -1.0, 1.0)) if denom else 0.0)
        return out


class ClipSimilarity(SimilarityScorer):
    """Cosine similarity of open_clip image embeddings of the two frames."""

    def __init__(self, model, preprocess, device: str, name: str, batch_size: int = 8) -> None:
        self.model = model.to(device).eval()
        self.preprocess = preprocess
        self.device = device
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, config: ScoreConfig, device: str, weights_dir: str | None = None) -> ClipSimilarity:
        try:
            import open_clip
        except ImportError as error:
            raise ImportError(
                "CLIP similarity needs open_clip: pip install 'sfi[clip]'  (or use --similarity hsv-hist)"
            ) from error
        key = (config.clip_model, config.clip_pretrained)
        if Path(config.clip_pretrained).is_file():
            checkpoint = Path(config.clip_pretrained)
        elif key in CLIP_WEIGHTS:
            checkpoint = resolve(CLIP_WEIGHTS[key], Path(weights_dir) if weights_dir else None)
        else:
            raise ValueError(
                f"no weights-table entry for CLIP {key}; pass a checkpoint file as --clip-pretrained"
            )
        # OpenAI's CLIP weights were trained with QuickGELU; open_clip only infers that from the tag.
        model, _, preprocess = open_clip.create_model_and_transforms(
            config.clip_model, pretrained=str(checkpoint), force_quick_gelu=config.clip_pretrained == "openai"
        )
        return cls(
            model,
            preprocess,
            device,
            f"clip:{config.clip_model}/{Path(config.clip_pretrained).name}",
            config.batch_size,
        )

    def _embed(self, images: list[np.ndarray]):
        import torch
        from PIL import Image

        feats = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                batch = torch.stack([self.preprocess(Image.fromarray(im)) for im in chunk]).to(self.device)
                emb = self.model.encode_image(batch).float()
                feats.append(torch.nn.functional.normalize(emb, dim=-1).cpu())
        return torch.cat(feats)

    def score(self, pairs):
        if not pairs:
            return []
        emb = self._embed([im for pair in pairs for im in pair]).view(len(pairs), 2, -1)
        # Unit vectors' dot product can round past 1 on some BLAS builds: clamp to the cosine's range.
        return (emb[:, 0] * emb[:, 1]).sum(-1).clamp(-1.0, 1.0).tolist()


SIMILARITY_BACKENDS = ("clip", "hsv-hist")


def make_similarity_scorer(
    config: ScoreConfig, device: str, weights_dir: str | None = None
) -> SimilarityScorer:
    if config.similarity == "clip":
        return ClipSimilarity.from_config(config, device, weights_dir)
    if config.similarity == "hsv-hist":
        return HsvHistogramSimilarity()
    raise ValueError(f"unknown similarity backend {config.similarity!r}; choose from {SIMILARITY_BACKENDS}")
