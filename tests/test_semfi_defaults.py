"""Wan2.1's sampling defaults, per-component load dtypes, and even time spacing of the N output frames."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from sfi_bench.models.resample import even_native_length, resample_positions
from sfi_bench.models.semfi.pipeline import WAN_NEGATIVE_PROMPT, SamplerSettings, sample_first_last


def test_wan_defaults_by_task_and_size():
    i2v = SamplerSettings().resolved()
    assert (i2v.steps, i2v.guidance_scale, i2v.shift) == (40, 5.0, 3.0)
    assert i2v.negative_prompt == "镜头晃动，" + WAN_NEGATIVE_PROMPT
    assert WAN_NEGATIVE_PROMPT.startswith("色调艳丽，过曝，静态") and WAN_NEGATIVE_PROMPT.endswith("倒着走")
    assert SamplerSettings(height=720, width=1280).resolved().shift == 5.0
    assert SamplerSettings(height=832, width=480).resolved().shift == 3.0
    flf2v = SamplerSettings(task="flf2v").resolved()
    assert (flf2v.steps, flf2v.shift) == (50, 16.0) and flf2v.negative_prompt.startswith("镜头切换，")
    changed = SamplerSettings.from_options(
        {"shift": "7", "negative_prompt": "", "steps": "3", "guidance_scale": "2"}
    )
    assert (changed.shift, changed.negative_prompt, changed.steps, changed.guidance_scale) == (
        7.0,
        "",
        3,
        2.0,
    )
    record = SamplerSettings().record()
    assert None not in record.values() and record["shift"] == 3.0
    with pytest.raises(ValueError, match="unknown sampler setting"):
        SamplerSettings.from_options({"stepz": 3})


def test_vae_and_image_encoder_load_in_float32_exactly(tmp_path):
    from sfi_bench.models.semfi.model import load_wan_pipeline
    from sfi_bench.models.semfi.pipeline import semfi_pipeline_class
    from sfi_bench.models.semfi.tiny import save_tiny_wan

    folder = save_tiny_wan(tmp_path / "wan")
    reference = load_wan_pipeline(semfi_pipeline_class(), folder, "cpu", torch.float32)
    pipe = load_wan_pipeline(semfi_pipeline_class(), folder, "cpu", torch.bfloat16)
    assert pipe.transformer.dtype == torch.bfloat16
    for name in ("vae", "image_encoder"):
        ours, theirs = getattr(pipe, name).state_dict(), getattr(reference, name).state_dict()
        assert all(v.dtype == torch.float32 for v in ours.values() if v.is_floating_point())
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)  # not a bf16 round trip


def test_every_n_is_equally_spaced_in_time():
    for n in range(2, 201):
        native = even_native_length(n)
        assert (native - 1) % 4 == 0 and native >= max(n, 5)
        positions = resample_positions(native, n)
        np.testing.assert_allclose(np.diff(positions), (native - 1) / (n - 1))
        assert positions[0] == 0 and positions[-1] == native - 1
        possible = [m for m in range(max(n, 5), 82) if (m - 1) % 4 == 0 and (m - 1) % (n - 1) == 0]
        if possible:
            # whole generated frames wherever a length up to the model's 81 allows it, the shortest such
            assert native == possible[0]
            np.testing.assert_allclose(positions, np.round(positions), atol=1e-9)
        else:
            assert native == max(5, -(-(n - 1) // 4) * 4 + 1)  # else the shortest 4k+1 >= N, blended
    assert [even_native_length(n) for n in (2, 3, 4, 5, 6, 7, 9, 12, 21, 22, 81)] == [
        5, 5, 13, 5, 21, 13, 9, 45, 21, 25, 81,
    ]  # fmt: skip


class _FakePipe:
    """Returns M frames whose pixel value is the frame index, so the picked frames can be read back."""

    def __init__(self):
        self.scheduler = types.SimpleNamespace(config={"flow_shift": 5.0})  # Wan: 5.0 off 480x832

    def __call__(self, num_frames, height, width, image, last_image, **kwargs):
        self.inputs = (np.asarray(image), np.asarray(last_image))
        video = np.broadcast_to(
            np.arange(num_frames)[:, None, None, None] / 255.0, (num_frames, height, width, 3)
        )
        return types.SimpleNamespace(frames=[video])


def test_sampling_n6_keeps_generated_frames_equally_spaced():
    pipe = _FakePipe()
    first = np.full((24, 40, 3), 200, np.uint8)
    last = np.full((24, 40, 3), 100, np.uint8)
    settings = SamplerSettings(steps=1, height=16, width=16)
    frames, info = sample_first_last(pipe, first, last, "x", 6, 0, settings)
    assert info["native_num_frames"] == 21 and info["retime"] == "whole frames"
    assert frames[:, 0, 0, 0].tolist() == [0, 4, 8, 12, 16, 20]  # generated frames, 4 apart
    # The first and last outputs are the model's frames 0 and 20, not the pasted endpoints.
    assert frames[0, 0, 0, 0] != first[0, 0, 0] and frames[-1, 0, 0, 0] != last[0, 0, 0]
    frames, info = sample_first_last(pipe, first, last, "x", 24, 0, settings)
    assert info["native_num_frames"] == 25 and info["retime"] == "linear blend"
    # Blends at the equally spaced times i * 24/23 (to the uint8 rounding).
    np.testing.assert_allclose(frames[:, 0, 0, 0].astype(float), np.arange(24) * 24 / 23, atol=0.5 + 1e-6)
