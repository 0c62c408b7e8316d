"""`sfi-bench` end to end on tiny data: run, models, import, score, leaderboard, report (+ headless Chromium)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sfi_bench.app import app
from sfi_bench.cli import COMMAND_MODULES
from sfi_bench.provenance import metric_cap, metric_id
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
    import csv
    import json

    import jsonschema

    from sfi_bench.results import load_schema

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
    ids = [metric_id(name) for name in ("endpoint_psnr", "temporal_flickering", "dynamic_degree")]
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == sorted(f"{i}.png" for i in ids)
    header, *rows = list(csv.reader((out / "lb.csv").open(encoding="utf-8")))
    assert header == ["model", "frames", "clips_scored", "clips_in_test", "clip_set", *ids]
    all_rows = {row[0]: row for row in rows if row[1] == "All"}
    assert all_rows["linear"][2:4] == ["4", "4"]  # clips, not frames (4 clips of 5 and 9 frames)
    document = json.loads((out / "lb.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, load_schema())
    tf, dd = ids[1], ids[2]
    cell = document["results"]["linear"][tf]["All"]
    assert cell["clips_scored"] == 4 and cell["stderr"] is not None and len(cell["ci95"]) == 2
    assert document["configs"]["linear"]["model_version"] and document["metrics"][tf]["version"]
    assert document["environment"]["linear"]["packages"]["numpy"]
    assert dd in document["not_computed"]["linear"]
    assert not any("cap" in note for note in document["footnotes"])  # the oracle's H.264 endpoints < 100 dB
    if metric_cap("endpoint_psnr") is not None:  # the baselines copy their endpoints: PSNR sits at its cap
        invoke("leaderboard", bench / "linear", bench / "repeat", "--csv", out / "copies.csv")
        notes = json.loads((out / "copies.json").read_text(encoding="utf-8"))["footnotes"]
        assert any(ids[0] in note and "cap" in note for note in notes)
    broken = dict(document, results={"linear": {tf: {"All": {"value": "high"}}}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, load_schema())


def test_leaderboard_refuses_runs_on_different_clip_sets_unless_allowed(bench: Path, tmp_path: Path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(bench / "data" / "clips.parquet")
    subset = bench / "data" / "test5.parquet"  # beside the clips: their paths are relative to it
    pq.write_table(table.filter(pc.equal(table["num_frames"], 5)), subset)
    five = tmp_path / "linear5"
    invoke("run", "--model", "linear", "--clips", subset, "--out", five)
    invoke("score", five, "--metric", "temporal_flickering", "--device", "cpu")
    refused = CliRunner().invoke(
        app, ["leaderboard", str(bench / "repeat"), str(five), "--csv", str(tmp_path / "x.csv")]
    )
    assert refused.exit_code == 2 and "--allow-mixed" in refused.output and "Traceback" not in refused.output
    invoke(
        "leaderboard",
        bench / "repeat",
        five,
        "--csv",
        tmp_path / "m.csv",
        "--md",
        tmp_path / "m.md",
        "--allow-mixed",
    )
    assert (tmp_path / "m.md").read_text(encoding="utf-8").startswith("**Mixed clip sets**")


def test_score_adds_a_metric_keeps_the_others_and_prints_its_table(bench: Path):
    import pyarrow.parquet as pq

    before = {
        (r["metric"], r["group"]): r["value"]
        for r in pq.read_table(bench / "repeat" / "scores_summary.parquet").to_pylist()
    }
    result = invoke("score", bench / "repeat", "--metric", "endpoint_ssim", "--device", "cpu")
    lines = result.output.splitlines()
    assert re.search(r"endpoint_ssim.*│ now", next(line for line in lines if "endpoint_ssim" in line))
    assert re.search(r"endpoint_psnr.*│ earlier", next(line for line in lines if "endpoint_psnr" in line))
    after = {
        (r["metric"], r["group"]): r["value"]
        for r in pq.read_table(bench / "repeat" / "scores_summary.parquet").to_pylist()
    }
    assert {m for m, _ in after} == {m for m, _ in before} | {"endpoint_ssim"}
    assert all(after[key] == value for key, value in before.items())  # recomputed from stored states, same


def test_score_fails_when_no_requested_metric_could_be_computed(bench: Path):
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(bench / "linear"),
            "--metric",
            "dynamic_degree",
            "--device",
            "cpu",
            "--weights-dir",
            str(bench / "no-weights"),
        ],
    )
    assert result.exit_code == 1 and "not computed [1]" in result.output and "Traceback" not in result.output
    assert re.search(r"\[1\] weights .* not found", " ".join(result.output.split()))  # the reason, in full


class _Outline(HTMLParser):
    """Where things are in the page: ids and tags of interest, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id") in ("leaderboard", "plots", "runs", "clips"):
            self.order.append(str(values["id"]))
        if tag in ("video", "img") and values.get("src"):
            self.order.append(tag)
            self.sources.append(str(values["src"]))


def test_report_puts_the_leaderboard_and_plots_first_and_previews_as_video(bench: Path):
    page = bench / "report" / "report.html"
    invoke("report", bench / "linear", bench / "repeat", bench / "oracle", "--out", page, "--per-scale", "1")
    text = page.read_text(encoding="utf-8")
    outline = _Outline()
    outline.feed(text)
    sections = [item for item in outline.order if item in ("leaderboard", "plots", "runs", "clips")]
    assert sections == ["leaderboard", "plots", "runs", "clips"]
    first_video = outline.order.index("video")
    assert outline.order.index("clips") < first_video  # per-clip media only below the table and plots
    assert all((page.parent / s).is_file() for s in outline.sources)
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing fetched from the network
    assert text.count("<h2>N = ") == 2 and "ground truth" in text and "oracle" in text
    videos = [s for s in outline.sources if s.endswith(".mp4")]
    strips = [s for s in outline.sources if s.endswith("_strip.jpg")]
    assert len(videos) == len(strips) == 2 * 4  # 2 scales x (GT + 3 models)
    assert not any(s.endswith(".gif") for s in outline.sources)
    import av

    with av.open(str(page.parent / videos[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    plots = [s for s in outline.sources if "/plots/" in s]
    assert plots and all(s.endswith(".svg") for s in plots)
    assert all((page.parent / s).with_suffix(".png").is_file() for s in plots)


@pytest.mark.chromium
@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium_with_the_table_at_the_top(bench: Path):
    page = bench / "report_chromium" / "report.html"
    invoke("report", bench / "linear", bench / "oracle", "--out", page, "--per-scale", "1")
    command = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--allow-file-access-from-files",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    assert int(re.search(r'data-videos-total="(\d+)"', dom).group(1)) == 2 * 3
    assert 'data-media-broken="0"' in dom  # every image and every video decoded
    assert int(re.search(r'data-leaderboard-top="(-?\d+)"', dom).group(1)) < 300  # on the first screen


@pytest.mark.slow
def test_every_command_runs_as_a_real_process(bench: Path, tmp_path: Path):
    """One subprocess per command: the installed entry point, exit codes and files, not only CliRunner."""
    import sys

    exe = Path(sys.executable).with_name("sfi-bench")
    clips = bench / "data" / "clips.parquet"

    def real(*args) -> subprocess.CompletedProcess:
        done = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    assert "linear" in real("models", "--plain").stdout
    real("run", "--model", "repeat", "--clips", clips, "--out", tmp_path / "repeat", "--limit", "2")
    real(
        "import", "--model", "oracle", "--dir", bench / "made", "--clips", clips, "--out", tmp_path / "oracle"
    )
    for run in ("repeat", "oracle"):
        real("score", tmp_path / run, "--metric", "psnr_all", "--device", "cpu")
    real(
        "leaderboard",
        tmp_path / "repeat",
        tmp_path / "oracle",
        "--csv",
        tmp_path / "lb.csv",
        "--sort-by",
        "psnr_all",
    )
    real(
        "report",
        tmp_path / "repeat",
        tmp_path / "oracle",
        "--out",
        tmp_path / "report.html",
        "--per-scale",
        "1",
    )
    assert (tmp_path / "lb.json").is_file() and (tmp_path / "report.html").is_file()
    rows = (tmp_path / "lb.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith("oracle,All")  # the ground truth itself ranks first by all-frame PSNR
