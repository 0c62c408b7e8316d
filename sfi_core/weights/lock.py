"""The weights lock file: digests recorded by verified fetches, and a (size, mtime_ns) -> sha256 cache.

One JSON file, `weights-lock.json`, in the weights folder (`--weights-dir`, else `$SFI_WEIGHTS_DIR`, else
`$XDG_CACHE_HOME/sfi`). `digests` holds, per table entry without a published digest, the sha256 its first
verified fetch saw; `hashes` maps an absolute path to the digest it had at a given size and mtime, so a
multi-GB file that has not changed since it was last hashed is not hashed again on every load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

LOCK_NAME = "weights-lock.json"
LOCK_VERSION = 1


def default_weights_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sfi"


def weights_home(weights_dir: Path | None = None) -> Path:
    """The weights folder: where fetched files go when one is named, and where the lock file lives."""
    if weights_dir:
        return Path(weights_dir)
    if os.environ.get("SFI_WEIGHTS_DIR"):
        return Path(os.environ["SFI_WEIGHTS_DIR"])
    return default_weights_home()


@dataclass
class WeightsLock:
    path: Path
    digests: dict[str, dict] = field(default_factory=dict)
    hashes: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> WeightsLock:
        path = Path(folder) / LOCK_NAME
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            # Absent or unreadable: nothing recorded yet. A damaged lock only costs a rehash.
            return cls(path)
        if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
            return cls(path)
        return cls(path, dict(data.get("digests", {})), dict(data.get("hashes", {})))

    def save(self) -> None:
        """Write atomically (temp file + rename): concurrent loaders never see half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": LOCK_VERSION, "digests": self.digests, "hashes": self.hashes}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{LOCK_NAME}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(body, fh, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def try_save(self) -> None:
        """Save the cache where the folder is writable; a read-only weights folder just means rehashing."""
        with contextlib.suppress(OSError):
            self.save()

    def cached_digest(self, path: Path) -> str | None:
        entry = self.hashes.get(str(Path(path).absolute()))
        if not entry:
            return None
        stat = Path(path).stat()
        if entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            return entry.get("sha256")
        return None

    def remember(self, path: Path, digest: str) -> None:
        stat = Path(path).stat()
        self.hashes[str(Path(path).absolute())] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": digest,
        }

    def record(self, name: str, digest: str, size: int, source: str, files: dict | None = None) -> None:
        """What a verified fetch of entry `name` saw; later loads of the entry must match it."""
        self.digests[name] = {"sha256": digest, "size": size, "source": source}
        if files:
            self.digests[name]["files"] = files


def lock_folders(weights_dir: Path | None = None) -> list[Path]:
    """The lock files consulted, first the one written to: the named folder, `$SFI_WEIGHTS_DIR`, the default."""
    folders = [weights_home(weights_dir), weights_home(None), default_weights_home()]
    return list(dict.fromkeys(Path(f).absolute() for f in folders))


def recorded(name: str, weights_dir: Path | None = None) -> dict | None:
    """The digest record of entry `name` in the first lock file that holds one."""
    for folder in lock_folders(weights_dir):
        lock = WeightsLock.load(folder)
        entry = lock.digests.get(name)
        if entry:
            return entry | {"lock": str(lock.path)}
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path, weights_dir: Path | None = None) -> str:
    """sha256 of `path`, from the lock's cache when size and mtime are unchanged, else hashed and cached."""
    folders = lock_folders(weights_dir)
    for folder in folders:
        cached = WeightsLock.load(folder).cached_digest(path)
        if cached:
            return cached
    digest = sha256_file(path)
    lock = WeightsLock.load(folders[0])
    lock.remember(path, digest)
    lock.try_save()
    return digest
