"""`sfi-bench` end to end on tiny data: run, models, import, score, leaderboard, report (+ headless Chromium)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sfi_bench.app import app
from sfi_bench.cli import COMMAND_MODULES
from sfi_data.testing.toy_dataset import build_toy_dataset

for _module in COMMAND_MODULES:
    importlib.import_module(_module)

METRICS = ["--metric", "endpoint_psnr", "--metric", "temporal_flickering", "--metric", "dynamic_degree"]


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    """Two scored runs (linear, repeat) and an import, on one toy video cut at N = 5 and 9."""
    root = tmp_path_factory.mktemp("bench")
    build_toy_dataset(root / "data", num_videos=2, scales=(5, 9), width=48, height=32)
    clips = root / "data" / "clips.parquet"
    for model in ("linear", "repeat"):
        invoke("run", "--model", model, "--clips", clips, "--out", root / model)
    (root / "made").mkdir()
    for video in (root / "data" / "clips").glob("*/*.mp4"):
        shutil.copy(video, root / "made" / video.name)  # "outputs" that are the ground truth itself
    invoke("import", "--model", "oracle", "--dir", root / "made", "--clips", clips, "--out", root / "oracle")
    invoke(
        "score",
        root / "linear",
        root / "repeat",
        root / "oracle",
        *METRICS,
        "--device",
        "cpu",
        "--weights-dir",
        root / "no-weights",
    )
    return root


def test_models_lists_every_registered_model():
    from sfi_bench.models import MODEL_REGISTRY

    result = invoke("models", "--plain")
    names = [line.split("\t")[0] for line in result.output.splitlines()]
    assert names == sorted(MODEL_REGISTRY)


def test_run_rerun_skips_and_unknown_model_suggests(bench: Path):
    clips = bench / "data" / "clips.parquet"
    result = invoke("run", "--model", "linear", "--clips", clips, "--out", bench / "linear")
    assert re.search(r"already finished \(skipped\)\s*│\s*4", result.output)
    bad = CliRunner().invoke(
        app, ["run", "--model", "lineer", "--clips", str(clips), "--out", str(bench / "x")]
    )
    assert bad.exit_code == 2 and "Did you mean linear" in bad.output


def test_leaderboard_files(bench: Path):
    out = bench / "lb"
    invoke(
        "leaderboard",
        bench / "linear",
        bench / "repeat",
        bench / "oracle",
        "--csv",
        out / "lb.csv",
        "--md",
        out / "lb.md",
        "--plots",
        out / "plots",
    )
    text = (out / "lb.md").read_text(encoding="utf-8")
    assert "| All | oracle |" in text and "[^1]:" in text  # RAFT weights absent: footnoted, not 0
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "dynamic_degree.png",
        "endpoint_psnr.png",
        "temporal_flickering.png",
    ]


def test_report_is_offline_and_complete(bench: Path):
    page = bench / "report" / "report.html"
    invoke("report", bench / "linear", bench / "repeat", bench / "oracle", "--out", page, "--per-scale", "1")
    html = page.read_text(encoding="utf-8")
    sources = re.findall(r'src="([^"]+)"', html)
    assert sources and all((page.parent / s).is_file() for s in sources)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # nothing fetched from the network
    assert html.count("<h2>N = ") == 2 and "ground truth" in html and "oracle" in html
    assert len(sources) == 2 * 2 * 4  # 2 scales x (GT + 3 models) x (preview + strip)


@pytest.mark.chromium
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(bench: Path):
    page = bench / "report_chromium" / "report.html"
    invoke("report", bench / "linear", bench / "oracle", "--out", page, "--per-scale", "1")
    command = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    total = int(re.search(r'data-images-total="(\d+)"', dom).group(1))
    assert total == 2 * 3 * 2 and 'data-images-broken="0"' in dom
