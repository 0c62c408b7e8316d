"""The built wheel works outside the checkout: the caption prompt ships as package data, `sfi-data caption` runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sfi_data.testing.fake_vllm import FAKE_MODEL, FakeVLLMServer
from sfi_data.testing.toy_dataset import build_toy_dataset

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "sfi_core", "sfi_data", "sfi_bench")


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{args[:4]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


def _build_wheel(tmp_path: Path) -> Path:
    # Build from a copy, so the shared checkout gets no build/ or egg-info from this test.
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, src / name)
    dist = tmp_path / "dist"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(src),
        ]
    )
    (wheel,) = dist.glob("sfi-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path) -> Path:
    """A venv with none of the checkout: dependencies come from .venv's site-packages by a .pth line.

    A directory named in a .pth file joins sys.path without its own .pth files being run, so the
    editable install's finder (which maps sfi_data to the checkout) stays out.
    """
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    (Path(purelib.stdout.strip()) / "sfi_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@pytest.mark.slow
def test_wheel_captions_outside_the_checkout(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        assert "sfi_data/prompts/caption_v1.yaml" in archive.namelist()
    venv = _fresh_venv(tmp_path)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ]
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sfi_data.captioning as c; print(c.__file__, c.DEFAULT_PROMPT)",
        ],
        cwd=elsewhere,
        env=env,
    ).stdout.split()
    assert all(Path(path).is_relative_to(venv) for path in where), where
    root = tmp_path / "ds"
    build_toy_dataset(root, num_videos=2, scales=(5, 9), width=64, height=48)
    with FakeVLLMServer() as server:
        args = f"caption --out {root} --api-base {server.url} --model {FAKE_MODEL} --frames 3 --max-side 32"
        _run([str(venv / "bin" / "sfi-data"), *args.split()], cwd=elsewhere, env=env)
    rows = pq.read_table(root / "captions.parquet").to_pylist()
    assert len(rows) == 4
    assert all(row["status"] == "ok" and row["prompt_version"] == "sfi-caption-v1" for row in rows)
