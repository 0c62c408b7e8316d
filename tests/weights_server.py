"""A loopback HTTP server standing in for the Hub and the download sites in the weights tests.

It serves Hub `resolve` URLs (`/{repo}/resolve/{revision}/{filename}`, with the ETag, X-Repo-Commit and
X-Linked-Size / X-Linked-Etag headers huggingface_hub reads for LFS files) and plain URLs, honours
`Range: bytes=N-`, and injects faults queued per path: "500", "404", "truncate" (half the body, then the
connection closes). It listens on 127.0.0.1 only and every socket has a short timeout.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sfi_core.weights import URL_MIRROR_ENV, WEIGHTS, WeightSpec

COMMIT = "0123456789abcdef0123456789abcdef01234567"
API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<what>revision|tree)/(?P<revision>[^/]+)$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")


@dataclass
class Served:
    files: dict[str, bytes] = field(
        default_factory=dict
    )  # path -> body, Hub files under /{repo}/resolve/main/
    faults: dict[str, list[str]] = field(default_factory=dict)  # path -> faults, one consumed per GET
    etags: dict[str, str] = field(
        default_factory=dict
    )  # path -> an LFS etag to announce instead of the sha256
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range header)

    def add_hub(self, repo: str, filename: str, body: bytes) -> str:
        path = f"/{repo}/resolve/main/{filename}"
        self.files[path] = body
        return path


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _lookup(self) -> tuple[str, bytes | None, dict[str, str]]:
            path = self.path.split("?", 1)[0]
            match = RESOLVE.match(path)
            if match:  # every revision resolves to the one commit
                path = f"/{match['repo']}/resolve/main/{match['filename']}"
            body = served.files.get(path)
            headers = {"Accept-Ranges": "bytes"}
            if match:
                headers["X-Repo-Commit"] = COMMIT
            if match and body is not None:
                etag = served.etags.get(path, hashlib.sha256(body).hexdigest())
                headers |= {
                    "ETag": f'"{etag}"',
                    "X-Linked-Etag": f'"{etag}"',
                    "X-Linked-Size": str(len(body)),
                }
            return path, body, headers

        def _send(self, status: int, headers: dict[str, str], length: int) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()

        def do_HEAD(self) -> None:
            path, body, headers = self._lookup()
            served.log.append(("HEAD", path, self.headers.get("Range", "")))
            if body is None:
                self._send(404, headers | {"X-Error-Code": "EntryNotFound"}, 0)
            else:
                self._send(200, headers, len(body))

        def _api(self) -> bool:
            """The two Hub API calls of a whole-repository download: repository info and its file tree."""
            match = API.match(self.path.split("?", 1)[0])
            if not match:
                return False
            prefix = f"/{match['repo']}/resolve/main/"
            files = {p.removeprefix(prefix): b for p, b in served.files.items() if p.startswith(prefix)}
            if not files:
                self._send(404, {"X-Error-Code": "RepoNotFound"}, 0)
                return True
            if match["what"] == "revision":
                info = {"id": match["repo"], "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
            else:
                info = [
                    {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    | {"lfs": {"oid": hashlib.sha256(b).hexdigest(), "size": len(b), "pointerSize": 130}}
                    for f, b in files.items()
                ]
            text = json.dumps(info).encode()
            self._send(200, {"Content-Type": "application/json"}, len(text))
            self.wfile.write(text)
            return True

        def do_GET(self) -> None:
            if self._api():
                served.log.append(("GET", self.path, ""))
                return
            path, body, headers = self._lookup()
            served.log.append(("GET", path, self.headers.get("Range", "")))
            queued = served.faults.get(path) or []
            fault = queued.pop(0) if queued else ""
            if body is None or fault == "404":
                self._send(404, headers | {"X-Error-Code": "EntryNotFound"}, 0)
                return
            if fault == "500":
                self._send(500, headers, 0)
                return
            start = int(re.match(r"bytes=(\d+)-", self.headers.get("Range", "bytes=0-"))[1])
            if start:
                if start >= len(body):
                    self._send(416, headers | {"Content-Range": f"bytes */{len(body)}"}, 0)
                    return
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            chunk = body[start:]
            self._send(206 if start else 200, headers, len(chunk))
            if fault == "truncate":
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

    return Handler


class LoopbackServer:
    """`with LoopbackServer(served) as server:` serves on http://127.0.0.1:<port> until the block ends."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def payload(seed: int, size: int = 96 * 1024) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (size // 32)


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def stand_in_table(bodies: dict[str, bytes]) -> dict[str, WeightSpec]:
    """One entry of each kind; the served bodies are random bytes, so their digests come from them."""
    prefix = sha(bodies["url-prefix"])[:8]
    json_init = Path(importlib.util.find_spec("json").origin)
    return {
        spec.name: spec
        for spec in [
            WeightSpec("hub-lfs", "model.safetensors", "hf:org/lfs-model", "MIT", "Hub LFS file"),
            WeightSpec(
                "url-prefix",
                f"net-{prefix}.pth",
                f"url:https://download.example.org/models/net-{prefix}.pth",
                "BSD",
                "torchvision-style file",
                sha256_prefix=prefix,
            ),
            WeightSpec(
                "url-full",
                "full.pt",
                "url:https://releases.example.com/v1/full.pt",
                "MIT",
                "file with a published sha256",
                sha256=sha(bodies["url-full"]),
            ),
            WeightSpec(
                "url-plain", "head.pth", "url:https://raw.example.com/main/head.pth", "MIT", "no digest"
            ),
            WeightSpec(
                "pkg-file",
                "__init__.py",
                "package:json/__init__.py",
                "PSF",
                "ships with a package",
                sha256=sha(json_init.read_bytes()),
            ),
            WeightSpec(
                "big-folder",
                "model_index.json",
                "hf:org/big",
                "Apache-2.0",
                "too big to fetch by accident",
                folder=True,
                named_only=True,
            ),
        ]
    }


def loopback_world(tmp_path: Path, monkeypatch) -> Iterator[dict]:
    """Body of a fixture: caches under tmp_path/home, a loopback server for the internet, the stand-in table."""
    from huggingface_hub import constants

    bodies = {name: payload(i) for i, name in enumerate(["hub-lfs", "url-prefix", "url-full", "url-plain"])}
    table = stand_in_table(bodies)
    served = Served()
    served.add_hub("org/lfs-model", "model.safetensors", bodies["hub-lfs"])
    served.add_hub("org/big", "model_index.json", b'{"_class_name": "WanPipeline"}')
    served.add_hub("org/big", "transformer/diffusion_pytorch_model.safetensors", payload(50, 4096))
    for name in ("url-prefix", "url-full", "url-plain"):
        served.files["/" + table[name].url.split("://", 1)[1]] = bodies[name]
    home = tmp_path / "home"
    for key, value in {
        "HOME": home,
        "HF_HOME": home / "hf",
        "TORCH_HOME": home / "torch",
        "XDG_CACHE_HOME": home / "cache",
    }.items():
        monkeypatch.setenv(key, str(value))
    for key in ("SFI_WEIGHTS_DIR", "HF_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    saved = dict(WEIGHTS)
    WEIGHTS.clear()
    WEIGHTS.update(table)
    try:
        with LoopbackServer(served) as server:
            monkeypatch.setenv("HF_ENDPOINT", server.url)
            monkeypatch.setenv(URL_MIRROR_ENV, server.url)
            yield {"server": server, "served": served, "bodies": bodies, "home": home, "tmp": tmp_path}
    finally:
        WEIGHTS.clear()
        WEIGHTS.update(saved)


def url_path(name: str) -> str:
    """The path the loopback server serves entry `name` under (Hub resolve URL or mirrored plain URL)."""
    spec = WEIGHTS[name]
    if spec.hf_repo:
        return f"/{spec.hf_repo}/resolve/main/{spec.filename}"
    return "/" + (spec.url or "").split("://", 1)[1]
