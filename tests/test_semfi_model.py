"""semfi and wan-flf2v through make_model and through `sfi-bench run`: N frames for every scale, any N."""

from __future__ import annotations

import numpy as np
import pytest

from sfi_bench.models import SFIRequest, make_model
from sfi_bench.models.semfi.tiny import TinyWanConfig, save_tiny_semfi
from sfi_core.constants import FRAME_COUNTS
from sfi_core.weights import WeightsMissingError

FAST = {"steps": 1, "guidance_scale": 1.0, "height": 16, "width": 16, "max_sequence_length": 8}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_wan")
    return {
        "semfi": save_tiny_semfi(root / "i2v"),
        "wan-flf2v": save_tiny_semfi(root / "flf", TinyWanConfig(flf2v=True)),
    }


def _request(n, seed=0):
    rng = np.random.default_rng(n)
    first, last = (rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(2))
    return SFIRequest(
        clip_id=f"c{n}", first_frame=first, last_frame=last, prompt="a cat turns", num_frames=n, seed=seed
    )


def test_semfi_any_n_gives_n_frames_and_routes_by_the_length_generated(folders):
    model = make_model("semfi", device="cpu", weights=str(folders["semfi"]), **FAST)
    model.load()
    transformer = model.pipe.transformer
    for n in (2, 3, 7, 12, 13, 26):
        result = model.generate(_request(n))
        assert result.frames.shape == (n, 16, 16, 3) and result.frames.dtype == np.uint8
        info = result.info
        generated = info["native_num_frames"]
        assert info["expert"] == min(FRAME_COUNTS, key=lambda s: (abs(generated - s), -s))
        assert info["active_adapters"] == ["universal", f"expert_{info['expert']}"]
        assert info["native_num_frames"] >= n and (info["native_num_frames"] - 1) % 4 == 0
        assert info["resampled"] == (info["native_num_frames"] != n)
        assert info["sampler"]["steps"] == 1 and info["generated_size"] == [16, 16] and info["seed"] == 0
    assert model.pipe.transformer is transformer  # switching experts never reloads


def test_semfi_is_deterministic_per_seed_and_adapters_matter(folders):
    with_mol = make_model("semfi", device="cpu", weights=str(folders["semfi"]), **FAST)
    bare = make_model("semfi", device="cpu", weights=str(folders["semfi"]), adapters="none", **FAST)
    a, b = with_mol.generate(_request(5)), with_mol.generate(_request(5))
    assert np.array_equal(a.frames, b.frames)
    plain = bare.generate(_request(5))
    assert plain.info["expert"] is None and not np.array_equal(plain.frames, a.frames)


def test_models_refuse_the_other_backbone(folders):
    with pytest.raises(ValueError, match="wan-flf2v"):
        make_model("semfi", device="cpu", weights=str(folders["wan-flf2v"]), adapters="none", **FAST).load()
    with pytest.raises(ValueError, match="semfi"):
        make_model("wan-flf2v", device="cpu", weights=str(folders["semfi"]), **FAST).load()


def test_missing_weights_say_how_to_get_them(tmp_path):
    with pytest.raises(WeightsMissingError, match="download Wan-AI/Wan2.1-I2V-14B-480P"):
        make_model("semfi", device="cpu", weights=str(tmp_path / "nothing")).load()
    with pytest.raises(ValueError, match="unknown sampler setting"):
        make_model("semfi", device="cpu", stepz=3)


def _test_manifest(root, scales):
    from sfi_data.testing.toy_dataset import build_toy_dataset

    build_toy_dataset(root, num_videos=1, scales=scales, width=24, height=16)
    return root / "clips.parquet"


@pytest.mark.parametrize("model_name", ["semfi", "wan-flf2v"])
def test_sfi_bench_run_produces_n_frames_for_every_scale(folders, tmp_path, model_name):
    from typer.testing import CliRunner

    import sfi_bench.commands.run  # noqa: F401  (registers `run`)
    import sfi_bench.commands.train  # noqa: F401  (a second command: typer then needs the command name)
    from sfi_bench.app import app
    from sfi_core.video import decode_all

    clips = _test_manifest(tmp_path / "data", FRAME_COUNTS)
    options = [x for k, v in FAST.items() for x in ("--option", f"{k}={v}")]
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "run",
            "--model",
            model_name,
            "--clips",
            str(clips),
            "--out",
            str(out),
            "--weights",
            str(folders[model_name]),
            "--device",
            "cpu",
            *options,
        ],
    )
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    rows = pq.read_table(out / "generations.parquet").to_pylist()
    assert sorted(r["num_frames"] for r in rows if r["status"] == "ok") == sorted(FRAME_COUNTS)
    for row in rows:
        stored = decode_all(out / row["frames_path"])
        assert stored.shape == (row["num_frames"], 16, 24, 3)  # N frames, at the clip's size
