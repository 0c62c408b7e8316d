"""First/last scores: flow against the known shift, the weight-free similarity, tiny random CLIP and RAFT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfi_core.weights import WEIGHTS, WeightsMissingError
from sfi_data.config import ScoreConfig
from sfi_data.scoring import PairScorer
from sfi_data.scoring.flow import OpenCVFlow, RaftFlow, make_flow_scorer, mean_flow_magnitude
from sfi_data.scoring.similarity import ClipSimilarity, HsvHistogramSimilarity
from sfi_data.synthetic import moving_texture_frames


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("shift", [(3, 0), (0, 2), (2, 2)])
def test_opencv_flow_score_matches_the_true_shift(method, shift):
    dx, dy = shift
    frames = moving_texture_frames(3, 192, 128, dx=dx, dy=dy, seed=1)
    truth = 2 * np.hypot(dx, dy)  # frames 0 -> 2
    scorer = OpenCVFlow(method, 192, 128)
    flow = scorer.flows([(frames[0], frames[2])])[0]
    inner = flow[16:-16, 16:-16]  # away from the borders, where content enters the window
    assert mean_flow_magnitude(inner) == pytest.approx(truth, rel=0.1)
    assert np.median(inner[..., 0]) == pytest.approx(2 * dx, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(2 * dy, abs=0.3)
    # The score itself averages over all pixels (borders included): still close to the truth.
    assert scorer.score([(frames[0], frames[2])])[0] == pytest.approx(truth, rel=0.25)


def test_flow_score_is_measured_at_the_work_size():
    frames = moving_texture_frames(3, 192, 128, dx=3, seed=2)
    native = OpenCVFlow("dis", 192, 128).score([(frames[0], frames[2])])[0]
    doubled = OpenCVFlow("dis", 384, 256).score([(frames[0], frames[2])])[0]
    assert doubled == pytest.approx(2 * native, rel=0.2)


def test_still_frames_have_zero_flow_and_full_similarity():
    frame = moving_texture_frames(1, 128, 96)[0]
    assert OpenCVFlow("dis", 128, 96).score([(frame, frame)])[0] < 0.05
    assert HsvHistogramSimilarity().score([(frame, frame)])[0] == pytest.approx(1.0)


def test_hsv_similarity_orders_near_and_far_pairs():
    a = moving_texture_frames(3, 128, 96, dx=2, seed=3)
    # Another scene: the same kind of texture, but strongly tinted (its colours are elsewhere in HSV).
    other = moving_texture_frames(1, 128, 96, seed=4)[0].astype(np.float32)
    other = np.clip(other * np.array([1.6, 0.5, 0.2]), 0, 255).astype(np.uint8)
    near, far = HsvHistogramSimilarity().score([(a[0], a[2]), (a[0], other)])
    assert near > 0.9 > far


def _tiny_clip():
    import open_clip

    model = open_clip.model.CLIP(
        embed_dim=16,
        vision_cfg=open_clip.model.CLIPVisionCfg(
            layers=1, width=32, head_width=16, patch_size=8, image_size=32
        ),
        text_cfg=open_clip.model.CLIPTextCfg(context_length=8, vocab_size=64, width=16, heads=1, layers=1),
    )
    preprocess = open_clip.image_transform(32, is_train=False)
    return model, preprocess


def test_tiny_random_clip_similarity_is_a_cosine():
    torch.manual_seed(0)
    model, preprocess = _tiny_clip()
    scorer = ClipSimilarity(model, preprocess, "cpu", "clip:tiny", batch_size=3)
    frames = moving_texture_frames(4, 64, 64, dx=1, seed=5)
    pairs = [(frames[0], frames[0]), (frames[0], frames[3]), (frames[1], 255 - frames[2])]
    scores = scorer.score(pairs)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    # Batched scoring equals one-by-one scoring.
    assert scores == pytest.approx([scorer.score([p])[0] for p in pairs], abs=1e-5)


def test_tiny_random_raft_loads_from_the_weights_table_path(tmp_path, monkeypatch):
    from dataclasses import replace

    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    spec = WEIGHTS["raft_small"]
    # A random stand-in cannot carry the real file's digest prefix: this test's table entry has none.
    monkeypatch.setitem(WEIGHTS, "raft_small", replace(spec, sha256_prefix=None))
    torch.save(raft_small(weights=None).state_dict(), tmp_path / spec.filename)
    config = ScoreConfig(flow="raft", raft_model="raft_small", raft_iters=2, flow_width=128, flow_height=128)
    scorer = make_flow_scorer(config, "cpu", str(tmp_path))
    assert isinstance(scorer, RaftFlow) and scorer.name == "raft:raft_small"
    frames = moving_texture_frames(2, 80, 60, dx=1)
    flows = scorer.flows([(frames[0], frames[1])] * 3)
    assert len(flows) == 3 and flows[0].shape == (128, 128, 2)
    np.testing.assert_allclose(flows[0], flows[2], atol=1e-5)


def test_missing_weights_fail_fast_with_file_place_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("SFI_WEIGHTS_DIR", raising=False)
    scorer = PairScorer(ScoreConfig(similarity="hsv-hist", flow="raft"), weights_dir=str(tmp_path / "w"))
    with pytest.raises(WeightsMissingError) as info:
        scorer.check_weights()
    message = str(info.value)
    assert "raft_large_C_T_SKHT_V2-ff5fadd5.pth" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message and str(tmp_path / "w") in message
    assert "download.pytorch.org" in message
    clip = PairScorer(ScoreConfig(similarity="clip", flow="dis"))
    with pytest.raises(WeightsMissingError, match="timm/vit_base_patch32_clip_224.openai"):
        clip.check_weights()
