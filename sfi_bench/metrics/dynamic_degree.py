"""VBench dynamic degree: is the video moving? RAFT flow on ~8 fps frames, top-5% magnitudes, a count rule.

Per video: frames are subsampled every max(1, round(fps / 8)) frames; for each consecutive pair the
flow magnitude's top 5% mean is compared with 6 · min(H, W) / 256 (VBench 0.1.5 `set_params`; no frame-rate
factor: a max(1, 8 / fps) one lived briefly in VBench's git history but is in no release); the video is
dynamic when at least round(4 · n / 16) pairs exceed it (n: subsampled frames, Python rounding). The score is the
share of dynamic videos. `dynamic_degree` uses RAFT (raft-things weights, 20 iterations, inputs padded
to a multiple of 8 by edge replication, as VBench does); `dynamic_degree_dis` swaps in OpenCV DIS flow and
is a different, weight-free metric.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sfi_bench.metrics.base import ClipSample, MeanMetric, require_weights

TARGET_FPS = 8.0
TOP_FRACTION = 0.05
RAFT_ITERATIONS = 20
DEFAULT_FPS = 8.0  # VBench's assumption when a clip carries no frame rate (image folders)

FlowFn = Callable[[list[tuple[np.ndarray, np.ndarray]]], list[np.ndarray]]


def subsample_indices(num_frames: int, fps: float) -> list[int]:
    interval = max(1, round(fps / TARGET_FPS))
    return list(range(0, num_frames, interval))


def motion_threshold(height: int, width: int) -> float:
    return 6.0 * (min(height, width) / 256.0)


def required_moving_pairs(num_subsampled_frames: int) -> int:
    return round(4 * (num_subsampled_frames / 16.0))


def top_magnitude_mean(flow: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Mean of the largest `fraction` of per-pixel flow magnitudes of a (H, W, 2) field (at least one)."""
    magnitude = np.sqrt(
        np.square(flow[..., 0].astype(np.float64)) + np.square(flow[..., 1].astype(np.float64))
    )
    flat = magnitude.ravel()
    cut = max(1, int(flat.size * fraction))
    return float(np.partition(flat, flat.size - cut)[flat.size - cut :].mean())


def is_dynamic(pair_scores: list[float], threshold: float, required: int) -> bool:
    """VBench's check: counting pairs above the threshold reaches `required` (never for no pairs)."""
    return len(pair_scores) > 0 and sum(score > threshold for score in pair_scores) >= required


def video_is_dynamic(frames: np.ndarray, fps: float | None, flow_fn: FlowFn) -> bool:
    fps = fps or DEFAULT_FPS
    kept = frames[subsample_indices(len(frames), fps)]
    pairs = list(zip(kept[:-1], kept[1:], strict=True))
    scores = [top_magnitude_mean(flow) for flow in flow_fn(pairs)] if pairs else []
    height, width = frames.shape[1:3]
    return is_dynamic(scores, motion_threshold(height, width), required_moving_pairs(len(kept)))


def pad_to_multiple(batch, multiple: int = 8):
    """RAFT's 'sintel' padder: replicate edges, split evenly (extra pixel at the bottom/right)."""
    import torch.nn.functional as F

    height, width = batch.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    return F.pad(batch, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2], mode="replicate")


class RaftPairFlow:
    """torchvision RAFT on uint8 frame pairs: [-1, 1] inputs, padded, 20 updates; flow of the padded frame."""

    def __init__(self, model, device: str, iterations: int = RAFT_ITERATIONS, batch_size: int = 8) -> None:
        self.model = model.to(device).eval()
        self.device, self.iterations, self.batch_size = device, iterations, batch_size

    def __call__(self, pairs):
        import torch

        def to_tensor(images):
            tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().to(self.device)
            return pad_to_multiple(tensor / 127.5 - 1.0)

        flows = []
        with torch.inference_mode():
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start : start + self.batch_size]
                flow = self.model(
                    to_tensor([a for a, _ in chunk]),
                    to_tensor([b for _, b in chunk]),
                    num_flow_updates=self.iterations,
                )[-1]
                flows += list(flow.permute(0, 2, 3, 1).float().cpu().numpy())
        return flows


def dis_pair_flow(pairs):
    """OpenCV DIS (medium preset) on greyscale frames at native size: the weight-free variant."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return [
        dis.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)
        for a, b in pairs
    ]


class DynamicDegree(MeanMetric):
    name = "dynamic_degree"
    cap = 1.0
    label_text = "DD"
    direction = "higher"
    version = "vbench-0.1.5 (RAFT raft-things = torchvision raft_large C_T_V1, 20 iters, ~8 fps)"
    group = "Video Quality"
    weights = ("raft_large_things",)

    def __init__(self, device: str = "auto", weights_dir=None, flow_fn: FlowFn | None = None) -> None:
        super().__init__(device, weights_dir)
        self.flow_fn = flow_fn

    def load(self) -> None:
        if self.flow_fn is not None:
            return
        import torch
        from torchvision.models.optical_flow import raft_large

        checkpoint = require_weights(self.weights[0], self.weights_dir)
        model = raft_large(weights=None)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        self.flow_fn = RaftPairFlow(model, self.device)

    def clip_value(self, sample: ClipSample) -> tuple[float, float]:
        if self.flow_fn is None:
            self.load()
        return float(video_is_dynamic(sample.generated, sample.fps, self.flow_fn)), 1.0


class DynamicDegreeDIS(DynamicDegree):
    name = "dynamic_degree_dis"
    label_text = "DD (DIS)"
    version = "1 (VBench rule, OpenCV DIS flow instead of RAFT: not the reference metric)"
    weights = ()
    variant_of = "dynamic_degree"

    def load(self) -> None:
        if self.flow_fn is None:
            self.flow_fn = dis_pair_flow
