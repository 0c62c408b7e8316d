"""The metric registry and `suite.evaluate`: groups, merging, metric facts, and failures kept to one metric."""

from __future__ import annotations

import numpy as np
import pytest

from sfi_bench.metrics import METRIC_REGISTRY, UnknownMetricError, metric_class
from sfi_bench.metrics.psnr import MAX_PSNR_DB
from sfi_bench.metrics.suite import DEFAULT_METRICS, evaluate, metric_info
from sfi_bench.metrics.temporal_flickering import temporal_flickering_score
from sfi_data.synthetic import moving_texture_frames
from tests.metrics_reference import clip, table_entry_without_digest

# ---- Registry and suite ----


def test_registry_is_lazy_and_suggests_names():
    with pytest.raises(UnknownMetricError, match="Did you mean.*temporal_flickering"):
        metric_class("temporal_flickerin")
    assert set(DEFAULT_METRICS) <= set(METRIC_REGISTRY)


def test_metric_info_declares_direction_version_and_label():
    info = {row["name"]: row for row in metric_info()}
    assert set(info) == set(METRIC_REGISTRY)
    for row in info.values():
        assert row["direction"] in ("higher", "lower") and row["version"]
        assert row["label"].endswith("↑" if row["direction"] == "higher" else "↓")
    assert info["fid"]["direction"] == "lower" and info["endpoint_psnr"]["direction"] == "higher"
    assert info["dynamic_degree_dis"]["variant_of"] == "dynamic_degree"
    ids = [row["id"] for row in info.values()]
    assert len(set(ids)) == len(ids) and all(i.isidentifier() for i in ids)  # usable as CSV column names
    assert all(row["id"] == name for name, row in info.items())  # one name per metric: registry = column
    assert info["endpoint_psnr"]["cap"] == MAX_PSNR_DB and info["ssim_all"]["cap"] == 1.0
    assert info["kid"]["cap"] is None  # unbiased: can go below 0
    assert "(endpoints)" in info["endpoint_ssim"]["label"] and "(endpoints)" not in info["ssim_all"]["label"]
    assert {"psnr_all", "ssim_all"} <= set(DEFAULT_METRICS)  # weight-free fidelity on a CPU-only board


def test_suite_groups_merge_and_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    rng = np.random.default_rng(7)
    samples = []
    for i, n in enumerate([5, 9, 5]):
        video = rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8)
        samples.append(clip(f"c{i}", video))
    seen = []
    result = evaluate(
        samples,
        ["temporal_flickering", "dynamic_degree", "endpoint_psnr"],
        device="cpu",
        weights_dir=tmp_path / "weights",
        progress=seen.append,
    )
    assert seen == [1, 1, 1]
    assert [row["clip_id"] for row in result.per_clip] == ["c0", "c1", "c2"]
    per_clip_tf = [temporal_flickering_score(s.generated) for s in samples]
    assert [row["temporal_flickering"] for row in result.per_clip] == pytest.approx(per_clip_tf)
    summary = {(row["group"], row["metric"]): row for row in result.summary}
    assert [g for g, m in summary if m == "temporal_flickering"] == ["All", "5", "9"]
    assert summary["All", "temporal_flickering"]["value"] == pytest.approx(np.mean(per_clip_tf))
    assert summary["5", "temporal_flickering"]["value"] == pytest.approx(np.mean(per_clip_tf[::2]))
    assert summary["5", "temporal_flickering"]["num_samples"] == 2
    assert summary["All", "temporal_flickering"]["label"] == "TF↑"
    missing = summary["All", "dynamic_degree"]
    assert missing["value"] is None and missing["status"] == "not computed"
    assert "raft_large_C_T_V1-22a6c225.pth" in missing["reason"] and "Get it with" in missing["reason"]
    assert all(row["dynamic_degree"] is None for row in result.per_clip)
    assert summary["All", "endpoint_psnr"]["value"] == MAX_PSNR_DB  # endpoints equal the conditions here


def test_suite_rejects_unknown_metric_before_work():
    with pytest.raises(UnknownMetricError, match="Did you mean"):
        evaluate(iter([]), ["lpipz"])


def test_suite_isolates_a_corrupt_weights_file(tmp_path, monkeypatch):
    import torch
    from torchvision.models.optical_flow import raft_large

    filename = table_entry_without_digest(monkeypatch, "raft_large_things")
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    buffer = tmp_path / "whole.pth"
    torch.save(raft_large(weights=None).state_dict(), buffer)
    data = buffer.read_bytes()
    (weights_dir / filename).write_bytes(data[: len(data) // 3])  # a download cut short
    rng = np.random.default_rng(9)
    truth = rng.integers(0, 256, (5, 24, 32, 3), dtype=np.uint8)
    result = evaluate(
        [clip("c", truth.copy(), reference=truth)],
        ["temporal_flickering", "dynamic_degree", "psnr_all"],
        device="cpu",
        weights_dir=weights_dir,
    )
    summary = {row["metric"]: row for row in result.summary if row["group"] == "All"}
    broken = summary["dynamic_degree"]
    assert broken["status"] == "not computed" and broken["value"] is None
    assert "Error" in broken["reason"] and "\n" not in broken["reason"]
    assert summary["temporal_flickering"]["value"] == pytest.approx(temporal_flickering_score(truth))
    assert summary["psnr_all"]["value"] == MAX_PSNR_DB


@pytest.mark.slow  # one pass of a full-size random RAFT
def test_suite_isolates_one_clip_that_a_network_cannot_take(tmp_path, monkeypatch):
    import torch
    from torchvision.models.optical_flow import raft_large

    filename = table_entry_without_digest(monkeypatch, "raft_large_things")
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    torch.manual_seed(0)
    torch.save(raft_large(weights=None).state_dict(), weights_dir / filename)
    small = moving_texture_frames(3, width=96, height=64, dx=3.0)  # RAFT needs 128 px: ValueError
    large = moving_texture_frames(2, width=128, height=128, dx=3.0)  # one RAFT pair: seconds on a CPU
    result = evaluate(
        [clip("small", small), clip("large", large)],
        ["dynamic_degree", "temporal_flickering"],
        device="cpu",
        weights_dir=weights_dir,
    )
    rows = {row["clip_id"]: row for row in result.per_clip}
    assert rows["small"]["dynamic_degree"] is None
    assert rows["small"]["dynamic_degree_reason"].startswith("not computed: ValueError")
    assert rows["large"]["dynamic_degree"] in (0.0, 1.0) and "dynamic_degree_reason" not in rows["large"]
    assert rows["small"]["temporal_flickering"] is not None
    summary = {row["metric"]: row for row in result.summary if row["group"] == "All"}
    assert summary["dynamic_degree"]["num_samples"] == 1 and summary["dynamic_degree"]["value"] is not None
    assert "1 clip(s) not computed, e.g. small: ValueError" in summary["dynamic_degree"]["reason"]
