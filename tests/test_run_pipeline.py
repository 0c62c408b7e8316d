"""`sfi-data run`: the whole chain from one file, weight-free, checked whole, resumable, extensible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from sfi_core.driver import SettingsChangedError
from sfi_core.registry import Registry
from sfi_data import run_pipeline as rp
from sfi_data.synthetic import moving_texture_frames, write_video
from sfi_data.testing.fake_vllm import FakeVLLMServer

PIPELINES = Path(__file__).parents[1] / "pipelines"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for i, dx in enumerate((1.0, 2.0, 3.0)):
        write_video(folder / f"v{i}.mp4", moving_texture_frames(90, 64, 48, dx=dx, seed=i), fps=24.0)
    return folder


@pytest.fixture(scope="module")
def server():
    with FakeVLLMServer(model="fake-vllm") as fake:
        yield fake


def spec_for(inputs, server, **changes) -> dict:
    spec = {
        "inputs": [str(inputs)],
        "steps": ["filter", "cut", "caption", "split", "stats"],
        "run": {"executor": "local", "shard_size": 2},
        "filter": {
            "score": {"similarity": "hsv-hist", "flow": "dis"},
            "thresholds": {"similarity": {"low": 0.0, "high": 10.0}, "flow": {"low": 0.0, "high": 1e6}},
        },
        "cut": {"frame_counts": [5, 9, 81], "preset": "ultrafast", "hard_cut_threshold": None},
        "caption": {
            "api_bases": [server.url],
            "model": "fake-vllm",
            "frames": 3,
            "max_side": 32,
            "backoff_base_s": 0.01,
            "max_attempts": 2,
            "concurrency": 1,
        },
        "split": {"num_videos": 1, "scales": [5, 9, 81]},
        "stats": {"plots": False},
    }
    return spec | changes


def test_whole_chain_then_resume_then_a_changed_setting_is_refused(inputs, server, tmp_path):
    out = tmp_path / "ds"
    outcomes = rp.run_pipeline(spec_for(inputs, server), out)
    assert [(o.name, o.status) for o in outcomes] == [
        ("filter", "done"),
        ("cut", "done"),
        ("caption", "done"),
        ("split", "done"),
        ("stats", "done"),
    ]
    assert pq.read_table(out / "clips.parquet").num_rows == 9
    captions = pq.read_table(out / "captions.parquet").to_pylist()
    assert len(captions) == 9 and all(c["status"] == "ok" and c["model"] == "fake-vllm" for c in captions)
    test = pq.read_table(out / "test.parquet").to_pylist()
    assert len(test) == 3 and all(row["caption"] for row in test)
    assert pq.read_table(out / "train.parquet").num_rows == 6
    assert (out / "DATASET_CARD.md").exists()
    # Rerun: every stage finds its work done with these settings.
    again = rp.run_pipeline(spec_for(inputs, server), out)
    assert [(o.summary["skipped"], o.summary["processed"]) for o in again[:2]] == [(3, 0), (3, 0)]
    # Another cut setting: refused before the first step runs, naming the key.
    changed = spec_for(inputs, server, cut={"frame_counts": [5, 9, 81], "preset": "veryfast"})
    videos_before = (out / "videos.parquet").stat().st_mtime_ns
    with pytest.raises(SettingsChangedError, match=r"preset: \"ultrafast\" -> \"veryfast\".*--overwrite"):
        rp.run_pipeline(changed, out)
    assert (out / "videos.parquet").stat().st_mtime_ns == videos_before
    # A caption setting too: refused before the filter runs, not when the caption step starts.
    spec = spec_for(inputs, server)
    spec["caption"] = spec["caption"] | {"frames": 4}
    with pytest.raises(SettingsChangedError, match=r"frames: 3 -> 4.*--overwrite"):
        rp.run_pipeline(spec, out)
    assert (out / "videos.parquet").stat().st_mtime_ns == videos_before
    redo = rp.run_pipeline(changed, out, overwrite=True, only=["filter", "cut"])
    assert [o.summary["processed"] for o in redo] == [3, 3]


def test_failed_captions_make_the_step_incomplete_and_a_rerun_finishes(inputs, tmp_path):
    out = tmp_path / "ds"
    with FakeVLLMServer(model="fake-vllm") as server:
        spec = spec_for(inputs, server, steps=["filter", "cut", "caption"])
        server.inject(error_500=4)  # two clips exhaust their two attempts
        first = rp.run_pipeline(spec, out)
        assert first[-1].status == "incomplete" and first[-1].summary["failed"] == 2
        second = rp.run_pipeline(spec, out)
        assert [o.status for o in second] == ["done", "done", "done"]
        assert second[-1].summary["ok"] == 2 and second[-1].summary["skipped"] == 7


def test_only_and_from(inputs, server, tmp_path):
    out = tmp_path / "ds"
    rp.run_pipeline(spec_for(inputs, server), out, only=["filter"])
    assert (out / "videos.parquet").exists() and not (out / "clips.parquet").exists()
    outcomes = rp.run_pipeline(spec_for(inputs, server, steps=["filter", "cut"]), out, start_at="cut")
    assert [o.name for o in outcomes] == ["cut"]
    with pytest.raises(ValueError, match="Did you mean caption"):
        rp.run_pipeline(spec_for(inputs, server), out, only=["captoin"])


def test_a_new_step_is_one_registry_entry(inputs, server, tmp_path, monkeypatch):
    seen = []

    class CountClips(rp.PipelineStep):
        name = "count_clips"

        def run(self, ctx, config):
            seen.append(pq.read_table(ctx.out_dir / "clips.parquet").num_rows)
            return {"clips": seen[-1]}

    steps = Registry("pipeline step", rp.PipelineStep, {name: rp.STEPS.target(name) for name in rp.STEPS})
    steps.register("count_clips", CountClips)
    monkeypatch.setattr(rp, "STEPS", steps)
    outcomes = rp.run_pipeline(
        spec_for(inputs, server, steps=["filter", "cut", "count_clips"]), tmp_path / "ds"
    )
    assert outcomes[-1].summary == {"clips": 9} and seen == [9]
    with pytest.raises(TypeError, match="not a PipelineStep"):
        Registry("pipeline step", rp.PipelineStep, {"bad": dict}).get("bad")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"captions": {}}, "unknown keys ['captions']"),
        ({"cut": {"prest": "fast"}}, "unknown setting 'cut.prest' (did you mean 'preset'?)"),
        ({"filter": {"score": {"reader": "decrod"}}}, "score.reader 'decrod' is not one of"),
        ({"filter": {"meta": {"max_fps": "thirty"}}}, "filter.meta.max_fps must be float"),
        ({"split": {"num_videos": "many"}}, "split.num_videos must be int"),
        ({"caption": {"limit": "all"}}, "caption.limit must be an integer"),
        ({"run": {"executor": "spark"}}, "run.executor 'spark' is not one of"),
        ({"caption": {"executor": "ray"}}, "unknown setting 'caption.executor' (every step runs on the"),
        ({"inputs": "not-a-list"}, "`inputs` must be a list"),
        ({"steps": ["filter", "cutt"]}, "Did you mean cut"),
    ],
)
def test_the_whole_file_is_checked_before_the_first_step(inputs, server, tmp_path, change, message):
    out = tmp_path / "never"
    with pytest.raises(ValueError) as caught:
        rp.run_pipeline(spec_for(inputs, server) | change, out)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not out.exists()  # nothing ran, not even the folder


def test_shipped_pipelines_parse_and_the_library_never_imports_the_demo_or_test_doubles():
    for name in ("sfi300k.yaml", "demo.yaml"):
        spec = rp.load_pipeline(PIPELINES / name)
        assert spec["steps"] == rp.DEFAULT_STEPS
    paper = yaml.safe_load((PIPELINES / "sfi300k.yaml").read_text())
    assert paper["cut"]["frame_counts"] == [5, 9, 17, 33, 65, 81]
    assert paper["split"]["num_videos"] == 100 and paper["caption"]["model"] == "Qwen/Qwen2.5-VL-32B-Instruct"
    library = Path(rp.__file__).parent
    offenders = [
        str(path.relative_to(library))
        for path in library.rglob("*.py")
        if path.name != "demo.py"
        and "testing" not in path.parts
        and ("sfi_data.demo" in path.read_text() or "sfi_data.testing" in path.read_text())
    ]
    assert offenders == []


def test_the_demo_entry_point_runs_the_pipeline_file_with_the_fake_server(inputs, tmp_path):
    from sfi_data import demo

    pipeline = tmp_path / "demo.yaml"
    shipped = yaml.safe_load((PIPELINES / "demo.yaml").read_text())
    # The shipped settings, on the small test corpus (whose videos are shorter than the demo's bounds).
    shipped["cut"] |= {"frame_counts": [5, 9], "preset": "ultrafast"}
    shipped["steps"] = ["filter", "cut", "caption"]
    pipeline.write_text(yaml.safe_dump(shipped))
    demo.main([str(pipeline), "--inputs", str(inputs), "--out", str(tmp_path / "demo")])
    captions = pq.read_table(tmp_path / "demo" / "dataset" / "captions.parquet").to_pylist()
    assert captions and all(c["model"] == "fake-vllm" and c["status"] == "ok" for c in captions)


@pytest.mark.slow
def test_cli_run_smoke_in_a_subprocess(inputs, tmp_path):
    spec = {
        "inputs": [str(inputs)],
        "steps": ["filter"],
        "run": {"executor": "local"},
        "filter": {"score": {"similarity": "hsv-hist", "flow": "dis"}},
    }
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "sfi_data.cli", "run", str(pipeline), "--out", str(tmp_path / "ds")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "filter: done" in " ".join(result.stderr.split())
    assert pq.read_table(tmp_path / "ds" / "videos.parquet").num_rows == 3


def test_cli_run_mistakes_end_in_one_line(tmp_path):
    from typer.testing import CliRunner

    import sfi_data.commands.run  # noqa: F401  (registers run)
    from sfi_data.app import app

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
        return result.exit_code, " ".join(result.output.split())

    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [filter\n")
    code, text = invoke("run", str(broken))
    assert code == 2 and "line 2 is not valid YAML" in text and "Traceback" not in text
    typo = tmp_path / "typo.yaml"
    typo.write_text("inputs: [x]\ncut: {crff: 3}\n")
    code, text = invoke("run", str(typo))
    assert code == 2 and "unknown setting 'cut.crff' (did you mean 'crf'?)" in text
    code, text = invoke("run", str(tmp_path / "absent.yaml"))
    assert code == 2 and "cannot read" in text and "absent.yaml" in text
