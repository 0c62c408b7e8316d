"""Weight-free SFIBench metrics against reference implementations and hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from sfi_bench.metrics.base import ClipSample
from sfi_bench.metrics.dynamic_degree import (
    DynamicDegree,
    DynamicDegreeDIS,
    is_dynamic,
    motion_threshold,
    pad_to_multiple,
    required_moving_pairs,
    subsample_indices,
    top_magnitude_mean,
    video_is_dynamic,
)
from sfi_bench.metrics.fid import frechet_distance, gaussian_stats
from sfi_bench.metrics.kid import kernel_inception_distance, mmd2_unbiased
from sfi_bench.metrics.psnr import MAX_PSNR_DB, AllFramePSNR, EndpointPSNR, psnr
from sfi_bench.metrics.ssim import AllFrameSSIM, EndpointSSIM, _ssim_batch_torch, ssim_batch
from sfi_bench.metrics.temporal_flickering import TemporalFlickering, temporal_flickering_score
from sfi_data.synthetic import moving_texture_frames
from tests.metrics_reference import clip


def noisy_pair(rng, shape=(40, 56, 3), noise=20):
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return a, b


# ---- PSNR / SSIM against scikit-image ----


def test_psnr_equals_skimage():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(0)
    for noise in (3, 20, 90):
        a, b = noisy_pair(rng, noise=noise)
        assert psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    assert psnr(a, a) == MAX_PSNR_DB


def test_ssim_equals_skimage():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    pairs = [noisy_pair(rng, noise=n) for n in (2, 15, 60)]
    ours = ssim_batch(np.stack([b for _, b in pairs]), np.stack([a for a, _ in pairs]))
    for (a, b), value in zip(pairs, ours, strict=True):
        # float32 maps (ssim_frame): within 1e-6 of skimage's float64; a wrong window or covariance is ~1e-3 off.
        assert value == pytest.approx(structural_similarity(a, b, channel_axis=-1, data_range=255), abs=1e-6)
    torch_path = _ssim_batch_torch(
        np.stack([b for _, b in pairs]), np.stack([a for a, _ in pairs]), 255.0, "cpu"
    )
    assert np.allclose(torch_path, ours, rtol=0, atol=1e-6)  # the GPU path (float64), run on the CPU here
    odd = noisy_pair(rng, shape=(23, 31, 3))
    assert ssim_batch(odd[1][None], odd[0][None])[0] == pytest.approx(
        structural_similarity(odd[0], odd[1], channel_axis=-1, data_range=255), abs=1e-6
    )


def test_endpoint_metrics_use_first_and_last_frames():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(2)
    generated = rng.integers(0, 256, (5, 32, 48, 3), dtype=np.uint8)
    first, last = noisy_pair(rng, (32, 48, 3))[1], noisy_pair(rng, (32, 48, 3))[1]
    sample = ClipSample("c", 5, generated, None, first, last)
    expected_psnr = np.mean(
        [
            peak_signal_noise_ratio(first, generated[0], data_range=255),
            peak_signal_noise_ratio(last, generated[-1], data_range=255),
        ]
    )
    expected_ssim = np.mean(
        [
            structural_similarity(first, generated[0], channel_axis=-1, data_range=255),
            structural_similarity(last, generated[-1], channel_axis=-1, data_range=255),
        ]
    )
    assert EndpointPSNR(device="cpu").update(sample) == pytest.approx(expected_psnr)
    assert EndpointSSIM(device="cpu").update(sample) == pytest.approx(expected_ssim, abs=1e-6)


@pytest.mark.filterwarnings("ignore:divide by zero")  # skimage's inf for the exact frame
def test_all_frame_psnr_and_ssim_average_skimage_per_frame_then_per_clip():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(8)
    clips = []
    for i, n in enumerate((3, 5)):
        truth = rng.integers(0, 256, (n, 24, 40, 3), dtype=np.uint8)
        generated = np.stack([noisy_pair(rng, truth.shape[1:], noise=5 + 10 * k)[1] for k in range(n)])
        generated[0] = truth[0]  # an exact frame: skimage says inf, we cap at 100 dB
        clips.append(ClipSample(f"c{i}", n, generated, truth, truth[0], truth[-1]))
    psnr_metric, ssim_metric = AllFramePSNR(device="cpu"), AllFrameSSIM(device="cpu")
    expected_psnr, expected_ssim = [], []
    for sample in clips:
        frame_psnr = [
            min(MAX_PSNR_DB, peak_signal_noise_ratio(t, g, data_range=255))
            for g, t in zip(sample.generated, sample.reference, strict=True)
        ]
        frame_ssim = [
            structural_similarity(t, g, channel_axis=-1, data_range=255)
            for g, t in zip(sample.generated, sample.reference, strict=True)
        ]
        expected_psnr.append(np.mean(frame_psnr))
        expected_ssim.append(np.mean(frame_ssim))
        assert psnr_metric.update(sample) == pytest.approx(expected_psnr[-1], abs=1e-9)
        assert ssim_metric.update(sample) == pytest.approx(expected_ssim[-1], abs=1e-6)
    # Each clip weighs the same, whatever its length.
    assert psnr_metric.compute().value == pytest.approx(np.mean(expected_psnr), abs=1e-9)
    assert ssim_metric.compute().value == pytest.approx(np.mean(expected_ssim), abs=1e-6)
    assert (
        AllFramePSNR(device="cpu").update(
            ClipSample("x", 3, clips[0].generated, None, clips[0].generated[0], clips[0].generated[-1])
        )
        is None
    )
    with pytest.raises(ValueError, match="ground-truth frames"):
        AllFrameSSIM(device="cpu").update(
            ClipSample(
                "y", 3, clips[0].generated, clips[1].reference, clips[0].generated[0], clips[0].generated[-1]
            )
        )


# ---- FID / KID math ----


def test_frechet_distance_closed_form_and_scipy():
    from scipy import linalg

    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    std1, std2 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    # Diagonal Gaussians: FID = |mu1 - mu2|² + Σ (σ1 - σ2)².
    closed = float(((mu1 - mu2) ** 2).sum() + ((std1 - std2) ** 2).sum())
    assert frechet_distance(mu1, np.diag(std1**2), mu2, np.diag(std2**2)) == pytest.approx(closed, rel=1e-9)
    # Full covariances: the usual scipy.linalg.sqrtm formula.
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)
    # From samples: converges to the closed form.
    x = rng.normal(mu1, std1, size=(200_000, 6))
    y = rng.normal(mu2, std2, size=(200_000, 6))
    assert frechet_distance(*gaussian_stats(x), *gaussian_stats(y)) == pytest.approx(closed, rel=0.02)


def test_kid_equals_brute_force_unbiased_mmd():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1.0, size=(12, 5))

    def k(u, v):
        return (u @ v / 5 + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert kernel_inception_distance(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    # Subsets are used beyond max_subset_size; same distribution -> near zero, shifted -> clearly positive.
    same = kernel_inception_distance(
        rng.normal(size=(300, 5)), rng.normal(size=(300, 5)), max_subset_size=100
    )
    shifted = kernel_inception_distance(
        rng.normal(size=(300, 5)), rng.normal(1, 1, size=(300, 5)), max_subset_size=100
    )
    assert abs(same) < 0.05 < shifted


# ---- Temporal flickering ----


def test_temporal_flickering_by_hand_and_vbench_loop():
    import cv2

    frames = np.zeros((4, 8, 8, 3), np.uint8)
    frames[1::2] = 10  # every consecutive pair differs by 10 everywhere
    assert temporal_flickering_score(frames) == pytest.approx((255 - 10) / 255)
    rng = np.random.default_rng(5)
    video = rng.integers(0, 256, (6, 20, 24, 3), dtype=np.uint8)
    maes = [
        np.mean(cv2.absdiff(video[i].astype(np.float32), video[i + 1].astype(np.float32)))
        for i in range(len(video) - 1)
    ]
    assert temporal_flickering_score(video) == pytest.approx((255 - np.mean(maes)) / 255, rel=1e-9)
    assert TemporalFlickering(device="cpu").update(clip("c", video)) == pytest.approx(
        (255 - np.mean(maes)) / 255
    )


# ---- Dynamic degree with a stubbed flow ----


def test_dynamic_degree_parameters_follow_vbench():
    assert subsample_indices(17, 24.0) == [0, 3, 6, 9, 12, 15]
    assert subsample_indices(5, 8.0) == [0, 1, 2, 3, 4]
    assert motion_threshold(96, 128) == pytest.approx(6 * 96 / 256)  # no frame-rate factor (VBench 0.1.5)
    assert required_moving_pairs(6) == 2  # round(1.5) = 2
    assert required_moving_pairs(2) == 0  # round(0.5) = 0 (Python rounding, as VBench)
    assert is_dynamic([0.0], 1.0, 0) and not is_dynamic([], 1.0, 0)


def test_top_magnitude_mean_is_top_five_percent():
    rng = np.random.default_rng(6)
    flow = rng.normal(size=(20, 30, 2))
    magnitude = np.sqrt((flow**2).sum(-1)).ravel()
    cut = int(magnitude.size * 0.05)
    assert top_magnitude_mean(flow) == pytest.approx(np.sort(magnitude)[::-1][:cut].mean())


def test_dynamic_degree_on_known_flow_fields():
    height, width = 96, 128
    threshold = 6 * min(height, width) / 256  # 2.25 px at fps >= 8
    video = np.zeros((17, height, width, 3), np.uint8)

    def field(top_value):
        flow = np.zeros((height, width, 2), np.float32)
        flow.reshape(-1, 2)[: int(height * width * 0.05), 0] = top_value  # exactly the top 5%
        return flow

    def stub(moving_pairs):
        return lambda pairs: [
            field(threshold + 1 if i in moving_pairs else threshold - 1) for i in range(len(pairs))
        ]

    # fps 24: 6 kept frames, 5 pairs, 2 must move.
    assert video_is_dynamic(video, 24.0, stub({0, 4}))
    assert not video_is_dynamic(video, 24.0, stub({3}))
    metric = DynamicDegree(device="cpu", flow_fn=stub({1, 2}))
    metric.load()
    values = [metric.update(clip("a", video, fps=24.0)), metric.update(clip("b", video, fps=24.0))]
    metric.flow_fn = stub(set())
    values.append(metric.update(clip("c", video, fps=24.0)))
    assert values == [1.0, 1.0, 0.0]
    assert metric.compute().value == pytest.approx(2 / 3)


def test_dynamic_degree_dis_variant_separates_static_and_moving():
    metric = DynamicDegreeDIS(device="cpu")
    metric.load()
    moving = moving_texture_frames(9, width=128, height=96, dx=6.0)
    static = np.repeat(moving[:1], 9, axis=0)
    assert metric.update(clip("m", moving)) == 1.0
    assert metric.update(clip("s", static)) == 0.0
    assert DynamicDegreeDIS.variant_of == "dynamic_degree" and DynamicDegreeDIS.name != DynamicDegree.name


def test_raft_padding_replicates_edges_like_raft_inputpadder():
    import torch

    batch = torch.arange(2 * 3 * 13 * 21, dtype=torch.float32).reshape(2, 3, 13, 21)
    padded = pad_to_multiple(batch)
    assert padded.shape[-2:] == (16, 24)
    # 3 rows: 1 on top, 2 at the bottom; 3 columns: 1 left, 2 right.
    assert torch.equal(padded[..., 1:14, 1:22], batch)
    assert torch.equal(padded[..., 0, 1:22], batch[..., 0, :])
    assert torch.equal(padded[..., 15, 1:22], batch[..., -1, :])
