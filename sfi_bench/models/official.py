"""`gi` and `fcvg`: adapters that run the authors' own inference scripts (25-frame SVD-based methods).

Neither method is a pip package, so the adapter runs the official script of a clone the user made,
with the user's weights, in a subprocess (argument list, the clone as working directory):

    gi:   Generative Inbetweening (Wang et al., ICLR 2025), github.com/jeanne-wang/svd_keyframe_interpolation
          keyframe_interpolation.py --frame1_path --frame2_path --out_path ... (writes a 25-frame video)
    fcvg: FCVG (Zhu et al., CVPR 2025), github.com/Tian-one/FCVG
          demo_FCVG.py --image1_path --image2_path --output_dir ... (writes OUT/NNNN/images/NN.png)

Pass the clone with `--option repo=DIR` (or $SFI_GI_REPO / $SFI_FCVG_REPO) and, where it is not the
venv's, the interpreter of its environment with `--option python=PATH`. Their native length is 25:
the harness resamples to N in time (endpoints kept) and back to the clip's size, and records both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.models.simple import check_endpoints


class OfficialCodeMissing(RuntimeError):
    """The official clone, its script or its weights are not where the adapter looked."""


class OfficialScriptError(RuntimeError):
    """The official script failed on a clip; the message carries the end of its output."""


def write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


class OfficialScriptModel(SFIModel):
    """Shared machinery: find the clone, check its files, run the script, read what it wrote."""

    repo_env: ClassVar[str] = ""
    repo_url: ClassVar[str] = ""
    script: ClassVar[str] = ""
    native_num_frames: ClassVar[int] = 25
    # Files (relative to the clone unless absolute) the script needs besides its code: the user's weights.
    default_weight_files: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        device: str = "auto",
        weights: str | None = None,
        repo: str | None = None,
        python: str | None = None,
        timeout_s: float = 3600.0,
        **options: Any,
    ) -> None:
        super().__init__(device=device, weights=weights, **options)
        self.repo = (
            Path(repo or os.environ.get(self.repo_env, "")).expanduser()
            if (repo or os.environ.get(self.repo_env))
            else None
        )
        self.python = python or sys.executable
        self.timeout_s = float(timeout_s)
        self.weight_files = {
            key: str(options.pop(key, default)) for key, default in self.default_weight_files.items()
        }
        self.extra_args = {k: str(v) for k, v in options.items() if k.startswith("arg_")}

    def weight_path(self, key: str) -> Path:
        path = Path(self.weight_files[key]).expanduser()
        return path if path.is_absolute() or self.repo is None else self.repo / path

    def load(self) -> None:
        if self.repo is None:
            raise OfficialCodeMissing(
                f"`{self.name}` runs the official code, which is not installed. Clone it "
                f"(git clone {self.repo_url}), install its requirements and weights as its README says, then pass "
                f"--option repo=DIR (or set ${self.repo_env})."
            )
        script = self.repo / self.script
        if not script.is_file():
            raise OfficialCodeMissing(f"{script} not found: is {self.repo} a clone of {self.repo_url}?")
        missing = [
            f"{key}={self.weight_path(key)}"
            for key in self.weight_files
            if not self.weight_path(key).exists()
        ]
        if missing:
            raise OfficialCodeMissing(
                f"`{self.name}` weights missing: {', '.join(missing)}. Download them as {self.repo_url} explains, "
                f"or point to them with --option KEY=PATH."
            )

    def command(self, first: Path, last: Path, out_dir: Path, request: SFIRequest) -> list[str]:
        raise NotImplementedError

    def read_output(self, out_dir: Path) -> np.ndarray:
        raise NotImplementedError

    def generate(self, request: SFIRequest) -> SFIResult:
        check_endpoints(request)
        if self.repo is None:
            self.load()
        with tempfile.TemporaryDirectory(prefix=f"sfi-{self.name}-") as tmp:
            work = Path(tmp)
            first, last, out_dir = work / "first.png", work / "last.png", work / "out"
            write_png(first, request.first_frame)
            write_png(last, request.last_frame)
            command = self.command(first, last, out_dir, request)
            for key, value in self.extra_args.items():
                command += [f"--{key.removeprefix('arg_')}", value]
            completed = subprocess.run(
                command, cwd=self.repo, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
            if completed.returncode != 0:
                tail = (completed.stderr or completed.stdout)[-2000:]
                raise OfficialScriptError(f"{self.script} exited with {completed.returncode}:\n{tail}")
            frames = self.read_output(out_dir)
        return SFIResult(
            frames, {"native_num_frames": len(frames), "official_script": self.script, "repo": str(self.repo)}
        )


class GenerativeInbetweeningModel(OfficialScriptModel):
    name = "gi"
    version = "official"
    description = "Generative Inbetweening (SVD keyframe interpolation), official script, 25 frames"
    requirements = (
        "clone github.com/jeanne-wang/svd_keyframe_interpolation + its weights",
        "--option repo=DIR (or $SFI_GI_REPO)",
        "GPU",
    )
    repo_env = "SFI_GI_REPO"
    repo_url = "https://github.com/jeanne-wang/svd_keyframe_interpolation"
    script = "keyframe_interpolation.py"
    default_weight_files = {"checkpoint_dir": "checkpoints/svd_reverse_motion_with_attnflip"}

    def command(self, first: Path, last: Path, out_dir: Path, request: SFIRequest) -> list[str]:
        out_dir.mkdir(parents=True, exist_ok=True)
        svd = str(self.options.get("svd", "stabilityai/stable-video-diffusion-img2vid-xt"))
        return [
            self.python,
            self.script,
            "--frame1_path",
            str(first),
            "--frame2_path",
            str(last),
            "--pretrained_model_name_or_path",
            svd,
            "--checkpoint_dir",
            str(self.weight_path("checkpoint_dir")),
            "--noise_injection_steps",
            str(self.options.get("noise_injection_steps", 5)),
            "--noise_injection_ratio",
            str(self.options.get("noise_injection_ratio", 0.5)),
            "--seed",
            str(request.seed),
            "--out_path",
            str(out_dir / "out.mp4"),
        ]

    def read_output(self, out_dir: Path) -> np.ndarray:
        from sfi_core.video import decode_all

        video = out_dir / "out.mp4"
        if not video.is_file():
            raise OfficialScriptError(f"{self.script} finished but wrote no {video}")
        return decode_all(video)


class FCVGModel(OfficialScriptModel):
    name = "fcvg"
    version = "official"
    description = "FCVG (frame-wise conditions, SVD-XT 1.1), official script, 25 frames"
    requirements = (
        "clone github.com/Tian-one/FCVG + GlueStick/DWPose/FCVG weights",
        "--option repo=DIR (or $SFI_FCVG_REPO)",
        "GPU",
    )
    repo_env = "SFI_FCVG_REPO"
    repo_url = "https://github.com/Tian-one/FCVG"
    script = "demo_FCVG.py"
    default_weight_files = {
        "controlnext_path": "checkpoints/controlnext.safetensors",
        "unet_path": "checkpoints/unet.safetensors",
    }

    def command(self, first: Path, last: Path, out_dir: Path, request: SFIRequest) -> list[str]:
        svd = str(self.options.get("svd", "stabilityai/stable-video-diffusion-img2vid-xt-1-1"))
        return [
            self.python,
            self.script,
            "--image1_path",
            str(first),
            "--image2_path",
            str(last),
            "--pretrained_model_name_or_path",
            svd,
            "--controlnext_path",
            str(self.weight_path("controlnext_path")),
            "--unet_path",
            str(self.weight_path("unet_path")),
            "--output_dir",
            str(out_dir),
        ]

    def read_output(self, out_dir: Path) -> np.ndarray:
        from sfi_bench.storage import read_image_folder

        # The script numbers its result folders OUT/0000, OUT/0001, ...; ours is fresh, so it holds one.
        found = sorted(out_dir.glob("*/images"))
        if not found:
            raise OfficialScriptError(f"{self.script} finished but wrote no {out_dir}/NNNN/images/ folder")
        return read_image_folder(found[-1])
