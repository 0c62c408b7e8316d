"""SemFi conditioning equals the paper's definition (section 3.2), in the tensors the DiT actually receives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfi_bench.models.semfi.conditioning import (
    clip_hidden_states,
    encode_video,
    endpoint_mask,
    endpoint_mask_per_frame,
    guidance_frames,
    native_length,
    wan_mask_layout,
)
from sfi_bench.models.semfi.pipeline import SamplerSettings, sample_first_last, semfi_pipeline_class
from sfi_bench.models.semfi.tiny import TinyWanConfig, build_tiny_wan_pipeline
from sfi_core.resize import fit_uint8_image


def test_native_length_is_smallest_wan_length_at_least_n():
    for n in range(2, 201):
        native = native_length(n)
        assert native >= n and (native - 1) % 4 == 0 and native >= 5
        assert native - 4 < max(n, 5)  # smallest such length
    assert [native_length(s) for s in (5, 9, 17, 33, 65, 81)] == [5, 9, 17, 33, 65, 81]
    with pytest.raises(ValueError, match="N >= 2"):
        native_length(1)


def test_guidance_frames_are_first_zeros_last():
    first, last = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    video = guidance_frames(first, last, 9)
    assert video.shape == (2, 3, 9, 8, 8)
    assert torch.equal(video[:, :, 0], first) and torch.equal(video[:, :, -1], last)
    assert torch.count_nonzero(video[:, :, 1:-1]) == 0


def test_mask_in_wan_layout_for_9_frames():
    per_frame = endpoint_mask_per_frame(9)
    assert per_frame.tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1]
    mask = endpoint_mask(9, 2, 3)
    assert mask.shape == (1, 4, 3, 2, 3)
    # latent frame 0 = frame 0 four times; latent 1 = frames 1-4; latent 2 = frames 5-8 (channel 3 = frame 8).
    expected = torch.tensor([[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 1]], dtype=torch.float32)
    assert torch.equal(mask[0, :, :, 0, 0], expected)
    assert torch.equal(mask, expected[None, :, :, None, None].expand(1, 4, 3, 2, 3))


def test_mask_layout_keeps_every_frame_for_all_lengths():
    for n in (5, 9, 17, 33, 65, 81, 201):
        per_frame = torch.rand(n)
        layout = wan_mask_layout(per_frame, 1, 1)[0, :, :, 0, 0]  # (4, T_lat)
        flat = layout.transpose(0, 1).reshape(-1)
        assert torch.equal(flat[:4], per_frame[:1].repeat(4)) and torch.equal(flat[4:], per_frame[1:])
    with pytest.raises(ValueError, match="4k\\+1"):
        wan_mask_layout(torch.ones(8), 1, 1)


def _capture_transformer_inputs(pipe):
    seen = []

    def hook(module, args, kwargs):
        seen.append({k: v.detach().clone() for k, v in kwargs.items() if torch.is_tensor(v)})

    pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


@pytest.fixture(scope="module")
def endpoints():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (24, 40, 3), dtype=np.uint8), rng.integers(
        0, 256, (24, 40, 3), dtype=np.uint8
    )


SETTINGS = SamplerSettings(steps=1, guidance_scale=1.0, height=32, width=32, max_sequence_length=8)


def test_semfi_pipeline_feeds_the_paper_conditioning(endpoints):
    from PIL import Image

    base = build_tiny_wan_pipeline()
    pipe = semfi_pipeline_class()(**base.components)
    pipe.set_progress_bar_config(disable=True)
    seen = _capture_transformer_inputs(pipe)
    first, last = endpoints
    frames, info = sample_first_last(pipe, first, last, "a cat walks", 9, 0, SETTINGS)
    # 24x40 endpoints at the 32x32 area: 16x32 (aspect kept, sides % 16), not stretched to 32x32.
    assert frames.shape == (9, 16, 32, 3) and info["native_num_frames"] == 9
    assert info["generated_size"] == [16, 32]
    (inputs,) = seen
    hidden = inputs["hidden_states"]
    assert hidden.shape == (1, 16 + 4 + 16, 3, 2, 4)
    # The mask channels: exactly M_0 = M_{N-1} = 1 in Wan's 4-channel layout.
    assert torch.equal(hidden[:, 16:20], endpoint_mask(9, 2, 4))
    # The guidance latents: VAE([I_f, 0 x 7, I_l]) of the endpoints fitted by the shared rule.
    fitted = [Image.fromarray(fit_uint8_image(x, (16, 32))) for x in endpoints]
    with torch.no_grad():
        pre = [pipe.video_processor.preprocess(x, height=16, width=32) for x in fitted]
        expected = encode_video(pipe.vae, guidance_frames(pre[0], pre[1], 9))
        torch.testing.assert_close(hidden[:, 20:], expected, rtol=1e-5, atol=1e-6)
        # The image tokens: CLIP(I_f) + CLIP(I_l), one image's token count.
        clip = clip_hidden_states(pipe.image_encoder, pipe.image_processor, fitted)
    image_tokens = inputs["encoder_hidden_states_image"]
    assert image_tokens.shape == (1, TinyWanConfig().clip_tokens, TinyWanConfig().image_dim)
    torch.testing.assert_close(image_tokens, (clip[0] + clip[1])[None], rtol=0, atol=0)


def test_training_conditioning_matches_inference(endpoints):
    """The trainer's condition_latents gives the DiT the same 20 channels as the sampling pipeline."""
    from sfi_bench.models.semfi.conditioning import condition_latents

    base = build_tiny_wan_pipeline()
    pipe = semfi_pipeline_class()(**base.components)
    pipe.set_progress_bar_config(disable=True)
    seen = _capture_transformer_inputs(pipe)
    sample_first_last(pipe, endpoints[0], endpoints[1], "a dog", 5, 0, SETTINGS)
    pre = pipe.video_processor.preprocess  # the pipeline's own preprocessing, to compare like with like
    from PIL import Image

    first_pre = pre(Image.fromarray(fit_uint8_image(endpoints[0], (16, 32))), height=16, width=32)
    last_pre = pre(Image.fromarray(fit_uint8_image(endpoints[1], (16, 32))), height=16, width=32)
    with torch.no_grad():
        cond = condition_latents(pipe.vae, first_pre, last_pre, 5)
    torch.testing.assert_close(seen[0]["hidden_states"][:, 16:], cond, rtol=1e-5, atol=1e-6)


def test_flf2v_pipeline_gives_two_frames_of_clip_tokens(endpoints):
    pipe = build_tiny_wan_pipeline(TinyWanConfig(flf2v=True))
    pipe.set_progress_bar_config(disable=True)
    seen = _capture_transformer_inputs(pipe)
    frames, _ = sample_first_last(pipe, endpoints[0], endpoints[1], "a car", 5, 0, SETTINGS)
    assert frames.shape == (5, 16, 32, 3)
    tokens = TinyWanConfig().clip_tokens
    # Concatenated, not summed: 2 x tokens, which the FLF2V DiT views as one sequence with its position embedding.
    assert seen[0]["encoder_hidden_states_image"].shape == (2, tokens, TinyWanConfig().image_dim)
    assert pipe.transformer.condition_embedder.image_embedder.pos_embed.shape[1] == 2 * tokens
