"""Flow score (paper section 3.3.1): mean L2 norm of the optical flow from first to last frame.

Both frames are resized to a fixed working size first (ScoreConfig.flow_width x flow_height), so the
score is in pixels at that size and comparable across source resolutions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sfi_core.weights import resolve
from sfi_data.config import ScoreConfig


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def mean_flow_magnitude(flow: np.ndarray) -> float:
    """Mean over all pixels of the L2 norm of a (H, W, 2) flow field."""
    return float(np.sqrt((flow.astype(np.float64) ** 2).sum(-1)).mean())


class FlowScorer:
    name: str

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def flows(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        raise NotImplementedError

    def score(self, pairs):
        return [mean_flow_magnitude(f) for f in self.flows(pairs)]


class OpenCVFlow(FlowScorer):
    """OpenCV DIS (preset medium) or Farneback on greyscale frames: no weights."""

    def __init__(self, method: str, width: int, height: int) -> None:
        super().__init__(width, height)
        if method not in ("dis", "farneback"):
            raise ValueError(f"unknown OpenCV flow {method!r}")
        self.method = method
        self.name = f"opencv-{method}"

    def flows(self, pairs):
        import cv2

        out = []
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if self.method == "dis" else None
        for first, last in pairs:
            a = cv2.cvtColor(resize(first, self.width, self.height), cv2.COLOR_RGB2GRAY)
            b = cv2.cvtColor(resize(last, self.width, self.height), cv2.COLOR_RGB2GRAY)
            if dis is not None:
                out.append(dis.calc(a, b, None))
            else:
                out.append(cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 21, 5, 7, 1.5, 0))
        return out


class RaftFlow(FlowScorer):
    """torchvision RAFT; inputs scaled to [-1, 1] as its weights' transforms do."""

    def __init__(
        self, model, device: str, width: int, height: int, iters: int, name: str, batch_size: int = 8
    ) -> None:
        super().__init__(width, height)
        if width % 8 or height % 8:
            raise ValueError(f"RAFT needs a working size divisible by 8, got {width}x{height}")
        self.model = model.to(device).eval()
        self.device, self.iters, self.name, self.batch_size = device, iters, name, batch_size

    @classmethod
    def from_config(cls, config: ScoreConfig, device: str, weights_dir: str | None = None) -> RaftFlow:
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        builders = {"raft_large": raft_large, "raft_small": raft_small}
        if config.raft_model not in builders:
            raise ValueError(f"unknown RAFT model {config.raft_model!r}; choose from {sorted(builders)}")
        checkpoint = resolve(config.raft_model, Path(weights_dir) if weights_dir else None)
        model = builders[config.raft_model](weights=None)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        return cls(
            model,
            device,
            config.flow_width,
            config.flow_height,
            config.raft_iters,
            f"raft:{config.raft_model}",
            config.batch_size,
        )

    def flows(self, pairs):
        import torch

        def to_tensor(images):
            arr = np.stack([resize(im, self.width, self.height) for im in images])
            tensor = torch.from_numpy(arr).permute(0, 3, 1, 2).float().to(self.device)
            return tensor / 127.5 - 1.0

        out = []
        with torch.inference_mode():
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start : start + self.batch_size]
                flow = self.model(
                    to_tensor([p[0] for p in chunk]),
                    to_tensor([p[1] for p in chunk]),
                    num_flow_updates=self.iters,
                )[-1]
                out += list(flow.permute(0, 2, 3, 1).cpu().numpy())
        return out


FLOW_BACKENDS = ("raft", "dis", "farneback")


def make_flow_scorer(config: ScoreConfig, device: str, weights_dir: str | None = None) -> FlowScorer:
    if config.flow == "raft":
        return RaftFlow.from_config(config, device, weights_dir)
    if config.flow in ("dis", "farneback"):
        return OpenCVFlow(config.flow, config.flow_width, config.flow_height)
    raise ValueError(f"unknown flow backend {config.flow!r}; choose from {FLOW_BACKENDS}")
