"""SFIClipDataset and ScaleBatchSampler over a toy dataset root."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from sfi_core.constants import STATUS_ERROR, STATUS_OK
from sfi_core.dataset import ScaleBatchSampler, SFIClipDataset, resize_frames
from sfi_core.manifest import write_rows
from sfi_core.resize import RESOLUTIONS, fit_area
from sfi_core.schemas import CAPTIONS, empty_row
from sfi_data.testing.toy_dataset import build_toy_dataset


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    clips = build_toy_dataset(root, num_videos=2, scales=(5, 9, 17), width=64, height=48)
    captions = [
        empty_row(CAPTIONS)
        | {
            "clip_id": row["clip_id"],
            "video_id": row["video_id"],
            "status": STATUS_OK,
            "caption": f"caption of {row['clip_id']}",
        }
        for row in clips[:-1]
    ]
    captions.append(
        empty_row(CAPTIONS) | {"clip_id": clips[-1]["clip_id"], "status": STATUS_ERROR, "reason": "x"}
    )
    write_rows(captions, CAPTIONS, root / "captions.parquet")
    return root


def test_item_contract(toy_root):
    dataset = SFIClipDataset(toy_root / "clips.parquet", size=(32, 40), resize="crop")
    assert len(dataset) == 6
    item = dataset[1]
    assert item["frames"].shape == (9, 3, 32, 40)
    assert item["frames"].dtype == torch.float32
    assert 0.0 <= float(item["frames"].min()) and float(item["frames"].max()) <= 1.0
    assert item["first_frame"].shape == (3, 32, 40) and item["last_frame"].shape == (3, 32, 40)
    assert item["num_frames"] == 9
    assert item["clip_id"] == "vid0000_f09" and item["video_id"] == "vid0000"
    assert item["caption"] == "caption of vid0000_f09"
    # The PNG condition frames are the clip's ends (up to lossless-vs-crf0 yuv420p coding).
    assert torch.allclose(item["first_frame"], item["frames"][0], atol=0.05)
    assert torch.allclose(item["last_frame"], item["frames"][-1], atol=0.05)
    assert not torch.allclose(item["first_frame"], item["last_frame"], atol=0.01)


def test_failed_caption_is_empty_and_require_caption_drops_it(toy_root):
    dataset = SFIClipDataset(toy_root / "clips.parquet", size=(16, 16))
    assert dataset[len(dataset) - 1]["caption"] == ""
    assert len(SFIClipDataset(toy_root / "clips.parquet", size=(16, 16), require_caption=True)) == 5


def test_scales_filter(toy_root):
    dataset = SFIClipDataset(toy_root / "clips.parquet", size=(16, 16), scales=[17])
    assert dataset.num_frames == [17, 17]


def test_resize_modes_keep_range_and_shape():
    frames = torch.rand(2, 3, 48, 64)
    assert resize_frames(frames, (30, 30), "crop").shape == (2, 3, 30, 30)
    assert resize_frames(frames, (30, 90), "stretch").shape == (2, 3, 30, 90)
    # Centre crop of a left/right split image keeps both halves visible in equal parts.
    image = torch.zeros(1, 3, 40, 80)
    image[..., 40:] = 1.0
    cropped = resize_frames(image, (20, 20), "crop")
    assert abs(float(cropped.mean()) - 0.5) < 0.05
    with pytest.raises(ValueError, match="resize mode"):
        resize_frames(frames, (8, 8), "squash")


def test_fit_keeps_a_portrait_clip_portrait():
    """1080x1920 (portrait) at the 480p area: 832x464 like Wan's rule, never squashed into 480x832."""
    assert fit_area(1920, 1080, RESOLUTIONS["480p"]) == (832, 464)
    assert fit_area(1080, 1920, RESOLUTIONS["480p"]) == (464, 832)
    assert fit_area(480, 832, RESOLUTIONS["480p"]) == (480, 832)
    assert fit_area(1280, 720, RESOLUTIONS["720p"]) == (1280, 720)
    for height, width in ((1920, 1080), (1080, 1440), (720, 1280), (500, 500)):
        fit_h, fit_w = fit_area(height, width, RESOLUTIONS["480p"])
        assert fit_h % 16 == 0 and fit_w % 16 == 0 and fit_h * fit_w <= 480 * 832
        assert abs(fit_h / fit_w - height / width) < 0.06  # only the rounding to 16 moves the aspect
    # A portrait image with a left/right split keeps both halves in equal parts (no squash, tiny crop).
    image = torch.zeros(1, 3, 192, 108)
    image[..., 54:] = 1.0
    fitted = resize_frames(image, (48, 64), "fit")
    assert fitted.shape[-2:] == fit_area(192, 108, (48, 64)) == (64, 32)
    assert abs(float(fitted.mean()) - 0.5) < 0.02


def test_dataset_fits_each_clip_and_quantizes_condition_frames(toy_root):
    dataset = SFIClipDataset(toy_root / "clips.parquet", size=(32, 48))
    item = dataset[0]
    assert dataset.output_size(0) == fit_area(48, 64, (32, 48)) == item["frames"].shape[-2:]
    assert all(key[1:] == dataset.output_size(0) for key in dataset.batch_keys)
    # The condition frames lie on the 8-bit grid (what inference's uint8 endpoints give the encoders).
    scaled = item["first_frame"] * 255
    assert torch.equal(scaled, scaled.round())


def test_scale_batches_hold_one_scale_and_cover_everything():
    class Scales:
        num_frames = [5] * 7 + [9] * 4 + [81] * 3

    sampler = ScaleBatchSampler(Scales(), batch_size=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 + 2 + 1
    for batch in batches:
        assert len({Scales.num_frames[i] for i in batch}) == 1
    assert sorted(i for b in batches for i in b) == list(range(14))
    # Same seed and epoch: same order; the next pass reshuffles.
    again = ScaleBatchSampler(Scales(), batch_size=3, seed=1)
    assert list(again) == batches
    assert list(again) != batches
    dropped = ScaleBatchSampler(Scales(), batch_size=3, drop_last=True)
    assert all(len(b) == 3 for b in dropped) and len(dropped) == 4


def test_scale_batches_split_across_ranks():
    class Scales:
        num_frames = [5] * 8 + [9] * 8

    ranks = [list(ScaleBatchSampler(Scales(), batch_size=2, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 4
    seen = [i for batches in ranks for b in batches for i in b]
    assert Counter(seen) == Counter(range(16))


def test_dataloader_with_workers_and_scale_batches(toy_root):
    dataset = SFIClipDataset(toy_root / "clips.parquet", size=(24, 32), resize="crop")
    sampler = ScaleBatchSampler(dataset, batch_size=2, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=2)
    seen = []
    for batch in loader:
        n = int(batch["num_frames"][0])
        assert batch["frames"].shape == (2, n, 3, 24, 32)
        assert batch["first_frame"].shape == (2, 3, 24, 32)
        assert len(batch["caption"]) == 2
        seen.extend(batch["clip_id"])
    assert sorted(seen) == sorted(row["clip_id"] for row in dataset.rows)


def test_missing_manifest_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="sfi-data cut"):
        SFIClipDataset(tmp_path / "clips.parquet")
