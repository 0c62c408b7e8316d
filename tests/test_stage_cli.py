"""filter -> cut through the CLI: the weight-free path needs its flags once, changed settings are refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import sfi_data.commands.curate  # noqa: F401  (registers filter and cut)
import sfi_data.commands.scenes  # noqa: F401  (registers scenes)
from sfi_data.app import app
from sfi_data.pipeline import filter_score_config


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def raw(tmp_path, make_video):
    # Five: the default 5-95 % bounds reject up to two per score, so at least one video is kept.
    for i in range(5):
        make_video(f"v{i}.mp4", 90, dx=1 + i, seed=i)
    (tmp_path / "raw" / "notes.mp4").write_text("not a video")
    return tmp_path / "raw"


def test_weight_free_filter_then_cut_with_no_flags(raw, tmp_path):
    out = str(tmp_path / "D")
    code, text = invoke(
        "filter", str(raw), "--out", out, "--similarity", "hsv-hist", "--flow", "dis", "--executor", "local"
    )
    assert code == 0, text
    # Five scored videos, default 5-95 % quantiles: the summary says the bounds mislead and what to do.
    assert "warning: similarity and flow bounds are quantiles of only 5 scored videos" in text
    assert "error: not_a_video │ 1" in text
    videos = pq.read_table(tmp_path / "D" / "videos.parquet").to_pylist()
    assert {v["threshold_warning"] for v in videos if v["status"] != "error"} != {None}
    recorded = json.loads((tmp_path / "D" / "work" / "filter" / "settings.json").read_text())
    assert recorded["score"]["similarity"] == "hsv-hist" and "weights" not in recorded["score"]
    # No backend flags: cut takes the filter's (no CLIP/RAFT weights exist here).
    code, text = invoke("cut", "--out", out, "--executor", "local", "--preset", "ultrafast")
    assert code == 0, text
    clips = pq.read_table(tmp_path / "D" / "clips.parquet").to_pylist()
    assert clips and {(c["similarity_backend"], c["flow_backend"]) for c in clips} == {
        ("hsv-hist-cosine", "opencv-dis")
    }
    # A dataset filtered before settings were recorded: the backends named in videos.parquet serve.
    (tmp_path / "D" / "work" / "filter" / "settings.json").unlink()
    recorded = filter_score_config(tmp_path / "D")
    assert (recorded.similarity, recorded.flow) == ("hsv-hist", "dis")


def test_a_changed_flag_is_refused_with_its_keys_and_overwrite_redoes_it(raw, tmp_path):
    out = str(tmp_path / "D")
    base = ["filter", str(raw), "--out", out, "--similarity", "hsv-hist", "--executor", "local"]
    assert invoke(*base, "--flow", "dis")[0] == 0
    code, text = invoke(*base, "--flow", "farneback", "--max-frames", "300", "--reader", "decord")
    assert code == 2  # a usage mistake (sfi_core.cli_errors): change the command or pass --overwrite
    assert (
        'meta.max_frames: 324 -> 300; score.flow: "dis" -> "farneback"; score.reader: "pyav" -> "decord"'
        in text
    )
    assert "--overwrite" in text and "another --out" in text
    assert {v["flow_backend"] for v in pq.read_table(tmp_path / "D" / "videos.parquet").to_pylist()} == {
        "opencv-dis",
        None,
    }
    code, text = invoke(*base, "--flow", "farneback", "--overwrite")
    assert code == 0, text
    flows = {v["flow_backend"] for v in pq.read_table(tmp_path / "D" / "videos.parquet").to_pylist()}
    assert flows == {"opencv-farneback", None}
    # A rerun with the same settings keeps the work and retries only the error row.
    code, text = invoke(*base, "--flow", "farneback")
    assert (
        code == 0
        and "done in an earlier run (same settings) │ 5" in text
        and "retried after an earlier error │ 1" in text
    )


def test_user_mistakes_end_in_one_line(raw, tmp_path):
    code, text = invoke("cut", "--out", str(tmp_path / "nothing"))
    assert code == 2 and "run `sfi-data filter INPUT... --out" in text
    broken = tmp_path / "broken.yaml"
    broken.write_text("filter:\n  score: {similarity: hsv-hist\n")
    code, text = invoke("filter", str(raw), "--out", str(tmp_path / "x"), "--config", str(broken))
    assert code == 2 and "is not valid YAML" in text and "Traceback" not in text
    typo = tmp_path / "typo.yaml"
    typo.write_text("filter:\n  meta: {max_fsp: 25}\n")
    code, text = invoke("filter", str(raw), "--out", str(tmp_path / "x"), "--config", str(typo))
    assert code == 2 and "unknown setting 'filter.meta.max_fsp' (did you mean 'max_fps'?)" in text


@pytest.mark.slow
def test_cli_cut_and_scenes_smoke_in_a_subprocess(raw, tmp_path):
    out = tmp_path / "D"
    weight_free = ["--similarity", "hsv-hist", "--flow", "dis", "--sim-low", "0", "--flow-low", "0"]
    assert invoke("filter", str(raw), "--out", str(out), *weight_free, "--executor", "local")[0] == 0
    cli = [sys.executable, "-m", "sfi_data.cli"]
    cut = subprocess.run(
        [
            *cli,
            "cut",
            "--out",
            str(out),
            "--executor",
            "local",
            "--frame-counts",
            "5,9",
            "--preset",
            "ultrafast",
        ],
        capture_output=True,
        text=True,
    )
    assert cut.returncode == 0, cut.stderr
    assert pq.read_table(out / "clips.parquet").num_rows == 10
    scenes = subprocess.run(
        [*cli, "scenes", str(raw / "v0.mp4"), "--out", str(tmp_path / "S"), "--executor", "local"],
        capture_output=True,
        text=True,
    )
    assert scenes.returncode == 0, scenes.stderr
    assert "next: sfi-data filter --scenes" in " ".join(scenes.stderr.split())
