"""`flow-warp`: bidirectional OpenCV optical flow, backward warp of both endpoints, time-weighted blend.

The flow from frame t to each endpoint is approximated from the two endpoint flows as in Super SloMo
(Jiang et al., 2018, eq. 4): F_t->0 = -(1-t) t F_0->1 + t^2 F_1->0 and F_t->1 = (1-t)^2 F_0->1 - t (1-t) F_1->0.
No weights: DIS (default) or Farneback flow from OpenCV.
"""

from __future__ import annotations

import numpy as np

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.models.simple import check_endpoints, timesteps

FLOW_METHODS = ("dis", "farneback")


def dense_flow(source: np.ndarray, target: np.ndarray, method: str = "dis") -> np.ndarray:
    """Flow (H, W, 2) with source(x) ~ target(x + flow(x)), from uint8 RGB images."""
    import cv2

    grey_source = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
    grey_target = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(
            grey_source, grey_target, None
        )
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(grey_source, grey_target, None, 0.5, 4, 21, 5, 7, 1.5, 0)
    raise ValueError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at x + flow(x) (bilinear, borders replicated); float32 out."""
    import cv2

    height, width = flow.shape[:2]
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = grid_x + flow[..., 0]
    map_y = grid_y + flow[..., 1]
    return cv2.remap(
        image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def interpolate_with_flows(
    first: np.ndarray, last: np.ndarray, flow_01: np.ndarray, flow_10: np.ndarray, t: float
) -> np.ndarray:
    flow_t0 = -(1 - t) * t * flow_01 + t * t * flow_10
    flow_t1 = (1 - t) * (1 - t) * flow_01 - t * (1 - t) * flow_10
    blended = (1 - t) * backward_warp(first, flow_t0) + t * backward_warp(last, flow_t1)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


class FlowWarpModel(SFIModel):
    """Classical flow-based interpolation: the weight-free motion baseline."""

    name = "flow-warp"
    version = "1"
    description = "bidirectional OpenCV optical flow (DIS or Farneback), warp and blend"
    requirements = ("none (CPU, OpenCV)",)

    def __init__(
        self, device: str = "auto", weights: str | None = None, flow: str = "dis", **options
    ) -> None:
        super().__init__(device=device, weights=weights, **options)
        if flow not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {flow!r}; use one of {', '.join(FLOW_METHODS)}")
        self.flow_method = flow

    def generate(self, request: SFIRequest) -> SFIResult:
        check_endpoints(request)
        first, last = request.first_frame, request.last_frame
        flow_01 = dense_flow(first, last, self.flow_method)
        flow_10 = dense_flow(last, first, self.flow_method)
        frames = [first]
        for t in timesteps(request.num_frames)[1:-1]:
            frames.append(interpolate_with_flows(first, last, flow_01, flow_10, float(t)))
        frames.append(last)
        return SFIResult(np.stack(frames), {"flow": self.flow_method})
