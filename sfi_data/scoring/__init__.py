"""First-vs-last-frame scores: similarity (CLIP or weight-free) and optical-flow magnitude."""

from __future__ import annotations

from sfi_core.device import resolve_device  # noqa: F401 - re-exported
from sfi_data.config import ScoreConfig
from sfi_data.scoring.flow import FlowScorer, make_flow_scorer
from sfi_data.scoring.similarity import SimilarityScorer, make_similarity_scorer


class PairScorer:
    """Both scores for (first, last) frame pairs; models load once in `setup` and run in batches."""

    def __init__(self, config: ScoreConfig, weights_dir: str | None = None) -> None:
        self.config = config
        self.weights_dir = weights_dir
        self.similarity: SimilarityScorer | None = None
        self.flow: FlowScorer | None = None

    @property
    def needs_gpu(self) -> bool:
        return self.config.similarity == "clip" or self.config.flow.startswith("raft")

    def setup(self) -> None:
        device = resolve_device(self.config.device)
        self.similarity = make_similarity_scorer(self.config, device, self.weights_dir)
        self.flow = make_flow_scorer(self.config, device, self.weights_dir)

    def check_weights(self) -> None:
        """Fail fast, in the driver, when a backend's weights are missing (before any worker starts)."""
        from pathlib import Path

        from sfi_core.weights import resolve
        from sfi_data.scoring.similarity import CLIP_WEIGHTS

        weights_dir = Path(self.weights_dir) if self.weights_dir else None
        if self.config.similarity == "clip" and not Path(self.config.clip_pretrained).is_file():
            key = (self.config.clip_model, self.config.clip_pretrained)
            if key not in CLIP_WEIGHTS:
                raise ValueError(
                    f"no weights-table entry for CLIP {key}; pass a checkpoint file as --clip-pretrained"
                )
            resolve(CLIP_WEIGHTS[key], weights_dir)
        if self.config.flow == "raft":
            resolve(self.config.raft_model, weights_dir)

    def score(self, pairs: list[tuple]) -> list[tuple[float, float]]:
        if self.similarity is None or self.flow is None:
            self.setup()
        sims = self.similarity.score(pairs)
        flows = self.flow.score(pairs)
        return list(zip(sims, flows, strict=True))

    @property
    def similarity_name(self) -> str:
        return self.similarity.name if self.similarity else self.config.similarity

    @property
    def flow_name(self) -> str:
        return self.flow.name if self.flow else self.config.flow

    @property
    def flow_work_size(self) -> str:
        return f"{self.config.flow_width}x{self.config.flow_height}"


__all__ = ["PairScorer", "resolve_device"]
