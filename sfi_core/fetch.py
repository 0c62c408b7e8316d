"""Downloads for `sfi-bench weights --fetch`: URL files over HTTP (resumable, bounded retries), Hub files
through huggingface_hub; every file is checked against its digest before it is put in place and recorded."""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sfi_core.weights import (
    WEIGHTS,
    WeightsCorruptError,
    WeightsMissingError,
    WeightSpec,
    check_file,
    check_folder,
    effective_url,
    fetch_target,
    how_to_get,
    hub_cache,
    hub_lfs_digest,
    named_weights_dir,
    resolve,
)
from sfi_core.weights.lock import WeightsLock, lock_folders, recorded, sha256_file

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
T = TypeVar("T")


class FetchError(RuntimeError):
    """A download failed for good; the message is one line saying what and what to do."""


class RetryableError(Exception):
    """A transfer that may succeed when tried again (5xx, timeout, connection cut mid-file)."""


@dataclass(frozen=True)
class RetryPolicy:
    # A few quick tries, then a one-line error: a fetch never hangs on a server that is not coming back.
    attempts: int = 4
    timeout_s: float = 15.0
    backoff_s: float = 0.5  # doubled after each failed try, at most 4 s


@dataclass(frozen=True)
class Fetched:
    name: str
    path: Path
    action: (
        str  # "fetched", "present" (already there and verified) or "recorded" (there, digest now recorded)
    )


def with_retries(attempt: Callable[[], T], what: str, policy: RetryPolicy) -> T:
    """Run `attempt` until it returns, raises FetchError, or has raised RetryableError `policy.attempts` times."""
    last = ""
    for index in range(policy.attempts):
        if index:
            time.sleep(min(policy.backoff_s * 2 ** (index - 1), 4.0))
        try:
            return attempt()
        except RetryableError as err:
            last = str(err)
    raise FetchError(
        f"{what}: gave up after {policy.attempts} tries ({last}); run the same command to resume"
    )


# ---- plain HTTP (URL entries) ----


def _transfer(url: str, part: Path, timeout_s: float, progress: bool) -> None:
    """Append the rest of `url` to `part` (HTTP Range from its current size); RetryableError when cut short."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "sfi-weights/1"} | ({"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            if err.headers.get("Content-Range", "").endswith(f"/{offset}"):
                return  # the part already holds the whole file (a run that stopped before the rename)
            part.unlink()
            raise RetryableError("the partial file is longer than the served one; starting over") from None
        if err.code in RETRY_STATUS:
            raise RetryableError(f"HTTP {err.code} {err.reason}") from None
        raise FetchError(f"{url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, ConnectionRefusedError):
            raise FetchError(f"{url}: connection refused; check the address and your network") from None
        raise RetryableError(str(err.reason)) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise RetryableError(f"{type(err).__name__}: {err}") from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored Range: start the part over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        _copy(response, part, offset, total, progress)
    size = part.stat().st_size
    if total is not None and size < total:
        raise RetryableError(f"transfer cut at {size} of {total} bytes")


def _copy(response, part: Path, offset: int, total: int | None, progress: bool) -> None:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        desc=part.name.removesuffix(".part"),
        file=sys.stderr,
        disable=not progress,
    )
    try:
        with open(part, "ab" if offset else "wb") as fh:
            while block := response.read(1 << 20):
                fh.write(block)
                bar.update(len(block))
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise RetryableError(
            f"transfer cut after {part.stat().st_size} bytes ({type(err).__name__})"
        ) from None
    finally:
        bar.close()


def _verify_or_remove(
    spec: WeightSpec, path: Path, weights_dir: Path | None, source: str, extra: list[Path]
) -> str:
    """sha256 of a freshly fetched file after checking it; a file that fails is deleted, never left in place."""
    digest = sha256_file(path)
    checks = [(spec.sha256, "the weights table"), (spec.sha256_prefix, "the digest prefix in its file name")]
    record = recorded(spec.name, weights_dir)
    checks.append(((record or {}).get("sha256"), f"the record in {(record or {}).get('lock')}"))
    for expected, origin in checks:
        if expected and not digest.startswith(expected):
            for stale in [path, *extra]:
                stale.unlink(missing_ok=True)
            raise FetchError(
                f"{source} served a file whose sha256 {digest[:16]}… does not match {expected} "
                f"from {origin}; it was removed. Check the source (HF_ENDPOINT, mirror) and fetch again"
            )
    return digest


def fetch_url(
    spec: WeightSpec, weights_dir: Path | None, policy: RetryPolicy, progress: bool
) -> tuple[Path, str]:
    url = effective_url(spec)
    target = fetch_target(spec, weights_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    with_retries(lambda: _transfer(url, part, policy.timeout_s, progress), url, policy)
    digest = _verify_or_remove(spec, part, weights_dir, url, [])
    os.replace(part, target)
    return target, digest


# ---- the Hugging Face Hub ----


def _hub_error(err: Exception, what: str) -> Exception:
    """Map a huggingface_hub / httpx failure to RetryableError or a one-line FetchError."""
    from huggingface_hub import errors

    if isinstance(err, errors.HfHubHTTPError) and err.response is not None:
        status = err.response.status_code
        if status in RETRY_STATUS:
            return RetryableError(f"HTTP {status}")
        if isinstance(
            err, (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.EntryNotFoundError)
        ):
            return FetchError(
                f"{what}: not found on the Hub (HTTP {status}); check the name, HF_ENDPOINT, HF_TOKEN"
            )
        return FetchError(f"{what}: HTTP {status} from the Hub")
    text = f"{type(err).__name__}: {err}".splitlines()[0]
    if "refused" in str(err).lower() or "ConnectError" in type(err).__name__:
        return FetchError(f"{what}: cannot connect ({text}); check HF_ENDPOINT and your network")
    if (
        isinstance(err, (OSError, TimeoutError))
        or "Timeout" in type(err).__name__
        or "Protocol" in type(err).__name__
    ):
        return RetryableError(text)
    return FetchError(f"{what}: {text}")


def _hub_call(call: Callable[[], T], what: str) -> T:
    try:
        return call()
    except (FetchError, RetryableError):
        raise
    except Exception as err:  # huggingface_hub raises many types; each becomes one line or a retry
        raise _hub_error(err, what) from None


def _hub_setup() -> tuple[str, str | None]:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise FetchError("HF_HUB_OFFLINE is set: unset it (or set it to 0) to fetch from the Hub")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return endpoint, os.environ.get("HF_TOKEN") or None


def _hub_places(spec: WeightSpec, weights_dir: Path | None) -> dict:
    named = named_weights_dir(weights_dir)
    return {"local_dir": named / spec.name} if named is not None else {"cache_dir": hub_cache()}


def fetch_hub_file(
    spec: WeightSpec, weights_dir: Path | None, policy: RetryPolicy, force: bool
) -> tuple[Path, str]:
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    endpoint, token = _hub_setup()
    repo = spec.hf_repo or ""
    url = hf_hub_url(repo, spec.filename, endpoint=endpoint)

    def download() -> Path:
        # The HEAD first: its errors (404, 5xx, refused) are ours to word; huggingface_hub then resumes
        # a cut transfer itself from its `.incomplete` file.
        _hub_call(lambda: get_hf_file_metadata(url, token=token, timeout=policy.timeout_s), url)
        return Path(
            _hub_call(
                lambda: hf_hub_download(
                    repo,
                    spec.filename,
                    endpoint=endpoint,
                    token=token,
                    force_download=force,
                    etag_timeout=policy.timeout_s,
                    **_hub_places(spec, weights_dir),
                ),
                url,
            )
        )

    path = with_retries(download, url, policy)
    published = hub_lfs_digest(path)
    blob = [path.resolve()] if path.is_symlink() else []
    digest = _verify_or_remove(spec, path, weights_dir, url, blob)
    if published and digest != published:
        for stale in [path, *blob]:
            stale.unlink(missing_ok=True)
        raise FetchError(
            f"{url} served a file whose sha256 {digest[:16]}… is not the published {published}; it was removed"
        )
    return path, digest


def fetch_hub_folder(
    spec: WeightSpec, weights_dir: Path | None, policy: RetryPolicy, force: bool
) -> tuple[Path, str, dict]:
    from huggingface_hub import snapshot_download

    endpoint, token = _hub_setup()
    repo = spec.hf_repo or ""

    def download() -> Path:
        return Path(
            _hub_call(
                lambda: snapshot_download(
                    repo,
                    endpoint=endpoint,
                    token=token,
                    force_download=force,
                    etag_timeout=policy.timeout_s,
                    **_hub_places(spec, weights_dir),
                ),
                f"{endpoint}/{repo}",
            )
        )

    folder = with_retries(download, f"{endpoint}/{repo}", policy)
    files = {}
    for path in sorted(
        p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.relative_to(folder).parts
    ):
        digest, published = sha256_file(path), hub_lfs_digest(path)
        if published and digest != published:
            raise FetchError(f"{path} does not match the Hub's sha256 {published}; fetch again with --force")
        files[str(path.relative_to(folder))] = {"sha256": digest, "size": path.stat().st_size}
    marker = files.get(spec.filename)
    if marker is None:
        raise FetchError(f"{endpoint}/{repo} has no {spec.filename}; it is not the folder the table names")
    return folder / spec.filename, marker["sha256"], files


# ---- one entry ----


def _in_place(spec: WeightSpec, weights_dir: Path | None) -> tuple[tuple[Path, bool] | None, bool]:
    """((path, verified) when the entry is already there and not corrupt, else None; whether it is corrupt)."""
    try:
        path = resolve(spec.name, weights_dir)
    except WeightsCorruptError:
        return None, True
    except WeightsMissingError:
        return None, False
    if spec.folder and spec.fetchable and not recorded(spec.name, weights_dir):
        # Only a completed fetch records a folder; its marker file alone may be all an interrupted one left.
        return None, False
    verified = (
        check_folder(spec, path.parent, weights_dir) if spec.folder else check_file(spec, path, weights_dir)
    )
    return (path, verified), False


def _record(
    spec: WeightSpec, path: Path, digest: str, weights_dir: Path | None, files: dict | None = None
) -> None:
    lock = WeightsLock.load(lock_folders(weights_dir)[0])
    lock.record(spec.name, digest, path.stat().st_size, spec.source, files)
    lock.remember(path, digest)
    for relative, entry in (files or {}).items():
        lock.hashes[str((path.parent / relative).absolute())] = {
            "size": entry["size"],
            "mtime_ns": (path.parent / relative).stat().st_mtime_ns,
            "sha256": entry["sha256"],
        }
    lock.save()


def fetch(
    name: str,
    weights_dir: Path | None = None,
    force: bool = False,
    policy: RetryPolicy = RetryPolicy(),
    progress: bool = True,
) -> Fetched:
    """Put entry `name` in place, checked and recorded in the weights lock; FetchError says why not."""
    spec = WEIGHTS[name]
    try:
        return _fetch(spec, weights_dir, force, policy, progress)
    except FetchError as err:
        raise FetchError(f"{name}: {err}") from None


def _fetch(
    spec: WeightSpec, weights_dir: Path | None, force: bool, policy: RetryPolicy, progress: bool
) -> Fetched:
    in_place, corrupt = (None, False) if force and spec.fetchable else _in_place(spec, weights_dir)
    if in_place is not None:
        path, verified = in_place
        if verified:
            return Fetched(spec.name, path, "present")
        # There, but nothing to check it against (placed by hand): its digest now becomes the record.
        _record(spec, path, sha256_file(path), weights_dir)
        return Fetched(spec.name, path, "recorded")
    if not spec.fetchable:
        raise FetchError(f"not downloaded by sfi: {how_to_get(spec, weights_dir)}")
    # A corrupt file in the Hub cache would be reused as is: download it again whenever it is not in place.
    # A folder is the exception: unless forced or corrupt, the files an interrupted fetch completed are kept.
    files = None
    if spec.url:
        path, digest = fetch_url(spec, weights_dir, policy, progress)
    elif spec.folder:
        path, digest, files = fetch_hub_folder(spec, weights_dir, policy, force=force or corrupt)
    else:
        path, digest = fetch_hub_file(spec, weights_dir, policy, force=True)
    _record(spec, path, digest, weights_dir, files)
    return Fetched(spec.name, path, "fetched")
