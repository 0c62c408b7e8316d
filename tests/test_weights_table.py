"""The weights table itself: digests where the source publishes them, packages with pip lines, routes."""

from __future__ import annotations

import re

import pytest

from sfi_core.weights import WEIGHTS, WeightsMissingError, manual_command
from sfi_core.weights.table import PACKAGE_PIP

HEX_SUFFIX = re.compile(r"-([0-9a-f]{8,})\.pth?$")


def test_torchvision_style_names_carry_the_checked_prefix():
    for spec in WEIGHTS.values():
        suffix = HEX_SUFFIX.search(spec.filename)
        if suffix and spec.url:
            assert spec.sha256_prefix == suffix[1], spec.name
            assert spec.url.endswith(spec.filename), spec.name
        if spec.sha256_prefix:
            assert suffix and suffix[1] == spec.sha256_prefix, spec.name


def test_package_files_carry_a_full_digest_and_every_package_a_pip_line():
    for spec in WEIGHTS.values():
        if spec.package:
            assert spec.sha256 and re.fullmatch(r"[0-9a-f]{64}", spec.sha256), spec.name
        assert set(spec.packages) <= set(PACKAGE_PIP), spec.name
    assert {"vbench", "pyiqa", "einops"} <= {m for spec in WEIGHTS.values() for m in spec.packages}


def test_every_downloadable_entry_has_one_plain_command(tmp_path):
    for spec in WEIGHTS.values():
        command = manual_command(spec, tmp_path)
        assert (command is not None) == spec.fetchable, spec.name
        if command:
            assert "\n" not in command and "huggingface-cli" not in command
            assert "curl" not in command or command.startswith("mkdir -p ")
    named_only = {spec.name for spec in WEIGHTS.values() if spec.named_only}
    wan = {"wan2.1-i2v-14b-480p", "wan2.1-flf2v-14b-720p"}
    assert named_only == wan | {f"{name}-official" for name in wan}


def test_each_wan_model_is_named_in_both_layouts_and_either_resolves(tmp_path):
    from sfi_core.weights import resolve_folder

    for name in ("wan2.1-i2v-14b-480p", "wan2.1-flf2v-14b-720p"):
        official = WEIGHTS[f"{name}-official"]
        assert WEIGHTS[name].alternates == (official.name,) and official.alternates == (name,)
        assert WEIGHTS[name].hf_repo == official.hf_repo + ("-Diffusers" if "i2v" in name else "-diffusers")
    # Under --weights-dir, either layout's folder serves the model; the diffusers one first.
    (tmp_path / "wan2.1-i2v-14b-480p-official").mkdir()
    (tmp_path / "wan2.1-i2v-14b-480p-official" / "Wan2.1_VAE.pth").write_bytes(b"vae")
    assert resolve_folder("wan2.1-i2v-14b-480p", tmp_path) == tmp_path / "wan2.1-i2v-14b-480p-official"
    (tmp_path / "wan2.1-i2v-14b-480p").mkdir()
    (tmp_path / "wan2.1-i2v-14b-480p" / "model_index.json").write_text("{}")
    assert resolve_folder("wan2.1-i2v-14b-480p", tmp_path) == tmp_path / "wan2.1-i2v-14b-480p"
    with pytest.raises(WeightsMissingError) as missing:
        resolve_folder("wan2.1-flf2v-14b-720p", tmp_path / "empty")
    message = str(missing.value)
    assert "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers" in message and "model_index.json" in message
    assert "Wan2.1_VAE.pth" in message and "hf download Wan-AI/Wan2.1-FLF2V-14B-720P " in message


def test_a_truncated_checkpoint_stops_its_metric_with_one_line(tmp_path, monkeypatch):
    from sfi_bench.metrics.base import MetricUnavailable, require_weights

    for key, value in {"TORCH_HOME": "torch", "HF_HOME": "hf", "XDG_CACHE_HOME": "cache"}.items():
        monkeypatch.setenv(key, str(tmp_path / value))
    monkeypatch.delenv("SFI_WEIGHTS_DIR", raising=False)
    checkpoint = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS["alexnet"].filename
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"\x80\x02" + bytes(4096))  # what a killed download leaves
    with pytest.raises(MetricUnavailable) as info:
        require_weights("alexnet")
    message = str(info.value)
    assert "\n" not in message and str(checkpoint) in message and "expected 7be5be79" in message
    assert message.endswith("sfi-bench weights --fetch alexnet --force")


def test_the_official_wan_repo_id_resolves_from_the_hub_cache(tmp_path, monkeypatch):
    from sfi_core.weights import resolve_folder

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    repo = tmp_path / "hub" / "models--Wan-AI--Wan2.1-I2V-14B-480P"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "Wan2.1_VAE.pth").write_bytes(b"vae")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    found = resolve_folder("wan2.1-i2v-14b-480p", None, "Wan-AI/Wan2.1-I2V-14B-480P")
    assert found == repo / "snapshots" / "abc123"
