"""The weights table itself: digests where the source publishes them, packages with pip lines, routes."""

from __future__ import annotations

import re

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
