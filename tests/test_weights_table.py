"""The weights table itself: digests where the source publishes them, packages with pip lines, routes."""

from __future__ import annotations

import re

import pytest

from sfi_core.weights import WEIGHTS, manual_command
from sfi_core.weights_table import PACKAGE_PIP

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
    assert named_only == {"wan2.1-i2v-14b-480p", "wan2.1-flf2v-14b-720p"}


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
