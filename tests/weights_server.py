"""A loopback HTTP server standing in for the Hub and the download sites in the weights tests.

It serves Hub `resolve` URLs (`/{repo}/resolve/{revision}/{filename}`, with the ETag, X-Repo-Commit and
X-Linked-Size / X-Linked-Etag headers huggingface_hub reads for LFS files) and plain URLs, honours
`Range: bytes=N-`, and injects faults queued per path: "500", "404", "truncate" (half the body, then the
connection closes). It listens on 127.0.0.1 only and every socket has a short timeout.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
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

        def do_GET(self) -> None:
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
