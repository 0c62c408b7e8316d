"""`sfi-bench generate`: one sample from two PNGs and a prompt on the tiny Wan, no manifest."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import sfi_bench.commands.generate  # noqa: F401  (registers `generate`)
import sfi_bench.commands.train  # noqa: F401  (a second command: typer then needs the command name)
from sfi_bench.app import app
from sfi_bench.models.official import write_png
from sfi_bench.models.semfi.tiny import save_tiny_semfi
from sfi_core.video import decode_all


def test_generate_writes_n_frames_at_the_input_size(tmp_path):
    folder = save_tiny_semfi(tmp_path / "wan")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_png(tmp_path / f"{name}.png", rng.integers(0, 256, (40, 24, 3), dtype=np.uint8))  # portrait
    options = ["steps=1", "guidance_scale=1.0", "height=32", "width=32", "max_sequence_length=8"]
    args = ["generate", "--first", str(tmp_path / "a.png"), "--last", str(tmp_path / "b.png")]
    args += ["--prompt", "a cat turns", "--frames", "6", "--out", str(tmp_path / "clip.mp4")]
    args += ["--weights", str(folder), "--device", "cpu", *[x for o in options for x in ("--option", o)]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert decode_all(tmp_path / "clip.mp4").shape == (6, 40, 24, 3)
    record = json.loads((tmp_path / "clip.json").read_text())
    info = record["info"]
    # 6 frames are 21 generated (every 4th kept): the 17-frame expert runs them (routed by generated length).
    assert info["expert"] == 17 and info["native_num_frames"] == 21 and info["retime"] == "whole frames"
    assert info["generated_size"] == [32, 16]  # the 32x32 area fitted to a 40x24 portrait: portrait
    assert info["sampler"]["negative_prompt"].startswith("镜头晃动")


def test_generate_says_what_is_wrong_in_one_line(tmp_path):
    result = CliRunner().invoke(
        app,
        ["generate", "--first", str(tmp_path / "none.png"), "--last", str(tmp_path / "none.png")]
        + ["--frames", "5", "--out", str(tmp_path / "x.mp4")],
    )
    assert result.exit_code == 2 and "cannot read the image" in result.output
