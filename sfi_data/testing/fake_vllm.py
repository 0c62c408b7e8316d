"""A tiny OpenAI-compatible chat-completions server on loopback, with injectable faults.

It speaks the parts of vLLM's API that captioning uses (POST /v1/chat/completions with image_url
parts, GET /v1/models, GET /health), checks requests the way vLLM would (model name, image count
limit, decodable images, API key), and answers with a deterministic caption derived from the images,
so tests can tell which request a caption belongs to. It is a test double, not a model:
`python -m sfi_data.testing.fake_vllm --port 8000` serves it for trying the pipeline without a GPU.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

FAKE_MODEL = "fake-vllm"
TOKENS_PER_PATCH_SIDE = 28  # Qwen2.5-VL: one visual token per 28x28 pixels


@dataclass
class Faults:
    """What the next requests suffer. Counters are consumed first (in the order below), then rates apply."""

    drop: int = 0  # close the connection without answering (a server dying mid-request)
    error_500: int = 0
    rate_limit_429: int = 0
    malformed: int = 0  # 200 with a body that is not JSON
    slow: int = 0  # sleep `slow_s` before answering
    slow_s: float = 0.0
    retry_after_s: float | None = 0.0  # the Retry-After header of a 429 (None: no header)
    drop_rate: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    malformed_rate: float = 0.0
    slow_rate: float = 0.0
    latency_s: float = 0.0  # added to every reply (a stand-in for the model's own time)


@dataclass
class ServerStats:
    requests: int = 0
    outcomes: Counter = field(default_factory=Counter)  # ok, drop, 500, 429, malformed, 400, 401, 404
    images: int = 0


class BadRequest(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _decode_image(url: str) -> np.ndarray:
    import cv2

    prefix, _, data = url.partition(",")
    if not prefix.startswith("data:image/") or ";base64" not in prefix:
        raise BadRequest(400, f"image_url must be a base64 data URL, got {url[:40]!r}")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError as error:
        raise BadRequest(400, f"invalid base64 image: {error}") from error
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadRequest(400, "could not decode an image")
    return image


def request_images(body: dict) -> tuple[list[str], list[str]]:
    """(image data URLs, texts) of a chat-completions body, in order; BadRequest if malformed."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "messages must be a non-empty list")
    urls, texts = [], []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            raise BadRequest(400, "message content must be a string or a list of parts")
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                url = (part.get("image_url") or {}).get("url")
                if not isinstance(url, str):
                    raise BadRequest(400, "image_url part without a url")
                urls.append(url)
            else:
                raise BadRequest(400, f"unsupported content part type {kind!r}")
    return urls, texts


def fake_caption(urls: list[str]) -> str:
    """The caption the fake server gives for these images: a fingerprint of them and their brightness."""
    fingerprint = hashlib.sha1("".join(urls).encode("ascii")).hexdigest()[:12]
    first, last = (_decode_image(urls[0]), _decode_image(urls[-1])) if urls else (np.zeros(1), np.zeros(1))
    return (
        f"Fake caption {fingerprint}: {len(urls)} frames; the mean brightness goes from "
        f"{float(first.mean()):.0f} to {float(last.mean()):.0f} between the first and the last frame."
    )


def fake_caption_for(body: dict) -> str:
    return fake_caption(request_images(body)[0])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server
    server: _Server

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, payload: dict | str, headers: dict[str, str] | None = None) -> None:
        data = payload.encode("utf-8") if isinstance(payload, str) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.server.owner.stats.outcomes[str(status)] += 1
        self._send(
            status,
            {"object": "error", "message": message, "type": "BadRequestError", "code": status},
            headers,
        )

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") == "/health":
            self._send(200, {})
        elif self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.owner.model, "object": "model"}]})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:  # noqa: N802
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        action = owner.next_action()
        if action == "drop":
            owner.stats.outcomes["drop"] += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        delay = owner.faults.latency_s + (owner.faults.slow_s if action == "slow" else 0.0)
        if delay > 0 and owner.stopped.wait(delay):
            self.close_connection = True  # the server died while this request waited
            return
        if action == "500":
            self._error(500, "Internal Server Error (injected)")
        elif action == "429":
            retry = owner.faults.retry_after_s
            self._error(
                429,
                "Too Many Requests (injected)",
                {"Retry-After": f"{retry:g}"} if retry is not None else None,
            )
        elif action == "malformed":
            owner.stats.outcomes["malformed"] += 1
            self._send(200, '{"id": "chatcmpl-broken", "choices": [{"message": ')
        elif self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
        else:
            self._complete(raw)

    def _complete(self, raw: bytes) -> None:
        owner = self.server.owner
        if owner.api_key and self.headers.get("Authorization") != f"Bearer {owner.api_key}":
            self._error(401, "Unauthorized: missing or wrong API key")
            return
        try:
            body = json.loads(raw)
            if body.get("model") != owner.model:
                raise BadRequest(404, f"The model `{body.get('model')}` does not exist.")
            urls, texts = request_images(body)
            if len(urls) > owner.max_images:
                raise BadRequest(400, f"At most {owner.max_images} image(s) may be provided in one request.")
            caption = fake_caption(urls) if urls or owner.answer is None else owner.answer(texts)
            images = [_decode_image(url) for url in urls]
        except json.JSONDecodeError as error:
            self._error(400, f"request body is not JSON: {error}")
            return
        except BadRequest as error:
            self._error(error.status, error.message)
            return
        visual_tokens = sum(
            max(1, round(img.shape[0] / TOKENS_PER_PATCH_SIDE))
            * max(1, round(img.shape[1] / TOKENS_PER_PATCH_SIDE))
            for img in images
        )
        prompt_tokens = sum(len(text.split()) for text in texts) + visual_tokens
        completion_tokens = len(caption.split())
        owner.stats.outcomes["ok"] += 1
        owner.stats.images += len(urls)
        self._send(
            200,
            {
                "id": f"chatcmpl-{owner.stats.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": owner.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": caption},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: FakeVLLMServer) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        # A client that timed out and hung up, or a connection we killed: expected here, not news.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            super().handle_error(request, client_address)

    def kill_connections(self) -> None:
        with self.connections_lock:
            live = list(self.connections)
            self.connections.clear()
        for conn in live:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its peer


class FakeVLLMServer:
    """Serve on 127.0.0.1 (port 0: any free port). `stop()` kills it, connections included; `start()`
    brings it back on the same port, like a vLLM server that crashed and restarted."""

    def __init__(
        self,
        port: int = 0,
        model: str = FAKE_MODEL,
        max_images: int = 16,
        api_key: str | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        answer: Callable[[list[str]], str] | None = None,
    ) -> None:
        self.port = port
        # What a text-only request (no images) is answered with, from its texts; None: a fake caption.
        self.answer = answer
        self.model = model
        self.max_images = max_images
        self.api_key = api_key
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self.stopped = threading.Event()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeVLLMServer:
        if self._server is not None:
            return self
        self.stopped.clear()
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-vllm-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.kill_connections()
        self._server = None

    def inject(self, **changes) -> None:
        """Change the faults, e.g. `inject(error_500=3)` or `inject(slow=2, slow_s=5.0)`."""
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.faults, key):
                    raise AttributeError(f"no fault {key!r}; known: {list(Faults.__dataclass_fields__)}")
                setattr(self.faults, key, value)

    def next_action(self) -> str:
        """Consume one fault for the request now arriving: drop, 500, 429, malformed, slow or ok."""
        with self._lock:
            self.stats.requests += 1
            faults = self.faults
            for name, action in (
                ("drop", "drop"),
                ("error_500", "500"),
                ("rate_limit_429", "429"),
                ("malformed", "malformed"),
                ("slow", "slow"),
            ):
                if getattr(faults, name) > 0:
                    setattr(faults, name, getattr(faults, name) - 1)
                    return action
            for name, action in (
                ("drop_rate", "drop"),
                ("error_rate", "500"),
                ("rate_limit_rate", "429"),
                ("malformed_rate", "malformed"),
                ("slow_rate", "slow"),
            ):
                if getattr(faults, name) > 0 and self._rng.random() < getattr(faults, name):
                    return action
            return "ok"

    def __enter__(self) -> FakeVLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the fake vLLM chat-completions API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default=FAKE_MODEL)
    parser.add_argument("--max-images", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    args = parser.parse_args(argv)
    server = FakeVLLMServer(
        args.port, args.model, args.max_images, faults=Faults(latency_s=args.latency)
    ).start()
    print(f"fake vLLM serving {args.model!r} at {server.url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
