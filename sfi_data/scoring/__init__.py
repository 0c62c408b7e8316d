"""First-vs-last-frame scores: similarity (CLIP or weight-free) and optical-flow magnitude."""

from __future__ import annotations

from sfi_core.device import resolve_device
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

    def settings(self) -> dict:
        """The settings that shape the scores, and the weights behind them by checksum.

        Device and batch size only change speed, so they are left out; so are a backend's settings
        when that backend is not used (a CLIP model name means nothing to hsv-hist).
        """
        config = self.config
        settings: dict = {"similarity": config.similarity, "flow": config.flow, "reader": config.reader}
        weights: dict[str, str | None] = {}
        if config.similarity == "clip":
            settings |= {"clip_model": config.clip_model, "clip_pretrained": config.clip_pretrained}
            weights["clip"] = self._clip_checksum()
        if config.flow == "raft":
            settings |= {"raft_model": config.raft_model, "raft_iters": config.raft_iters}
            weights["raft"] = weights_checksum(config.raft_model)
        # The flow score is measured in px at this working size, whatever the backend.
        settings |= {"flow_width": config.flow_width, "flow_height": config.flow_height}
        if weights:
            settings["weights"] = weights
        return settings

    def _clip_checksum(self) -> str | None:
        from pathlib import Path

        from sfi_data.scoring.similarity import CLIP_WEIGHTS

        if Path(self.config.clip_pretrained).is_file():
            return file_checksum(Path(self.config.clip_pretrained))
        key = (self.config.clip_model, self.config.clip_pretrained)
        return weights_checksum(CLIP_WEIGHTS[key]) if key in CLIP_WEIGHTS else None

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


def weights_checksum(name: str) -> str | None:
    """The weights table's published digest of `name` ("sha256:<hex>" or a prefix), or None.

    The table's digest, not a hash of the file: hashing a 500 MB checkpoint on every run would cost
    seconds, and the file is verified against this digest where it is fetched.
    """
    from sfi_core.weights import WEIGHTS

    spec = WEIGHTS.get(name)
    if spec is None:
        return None
    if spec.sha256:
        return f"sha256:{spec.sha256}"
    return f"sha256-prefix:{spec.sha256_prefix}" if spec.sha256_prefix else f"name:{name}"


def file_checksum(path) -> str:
    """sha256 of a checkpoint the user named as a file (no table digest to go by)."""
    from sfi_core.weights.lock import sha256_file

    return f"sha256:{sha256_file(path)}"


__all__ = ["PairScorer", "file_checksum", "resolve_device", "weights_checksum"]
