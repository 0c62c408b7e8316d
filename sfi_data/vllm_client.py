"""An async chat-completions client for vLLM's OpenAI-compatible server: round-robin, timeouts, retries."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import time
from dataclasses import dataclass

import httpx

# Statuses worth another try: rate limiting and the server's own trouble.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Connection-level trouble: refused, reset, dropped mid-reply, timed out.
RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.TransportError)
API_KEY_ENVS = ("SFI_CAPTION_API_KEY", "OPENAI_API_KEY")


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    # Honour a server's Retry-After up to this many seconds.
    retry_after_max_s: float = 60.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Full-jitter exponential backoff after failed attempt number `attempt` (1-based)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.retry_after_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass
class ChatReply:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_s: float  # of the successful request alone
    api_base: str
    attempts: int


class RequestFailed(Exception):
    """A request that failed for good; `reason` goes into the manifest."""

    def __init__(self, reason: str, attempts: int, api_base: str, latency_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.api_base = api_base
        self.latency_s = latency_s


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


def api_key_from_env(names: tuple[str, ...] = API_KEY_ENVS) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def parse_reply(payload: dict) -> tuple[str, str | None, dict]:
    """(text, finish_reason, usage) of a chat-completions body; ValueError when it is not one."""
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("reply has no choices")
    message = choices[0].get("message") or {}
    text = message.get("content")
    if not isinstance(text, str):
        raise ValueError("reply's first choice has no text content")
    usage = payload.get("usage") or {}
    return text.strip(), choices[0].get("finish_reason"), usage


class ChatClient:
    """Sends chat-completions bodies to one or more servers (round-robin per attempt, so a retry
    moves on to the next server), with a per-request timeout and retries with backoff."""

    def __init__(
        self,
        api_bases: list[str],
        api_key: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 10.0,
        max_connections: int = 16,
        retry: RetryPolicy | None = None,
        first_server: int = 0,
    ) -> None:
        if not api_bases:
            raise ValueError("give at least one --api-base, e.g. http://localhost:8000/v1")
        self.api_bases = [base.rstrip("/") for base in api_bases]
        # A caller that sends several batches through fresh clients passes how far round-robin got.
        start = first_server % len(self.api_bases)
        self._next_start = itertools.cycle([*range(start, len(self.api_bases)), *range(start)])
        self.retry = retry or RetryPolicy()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    @classmethod
    def configured(
        cls, api_bases: list[str], api_key: str | None, config, first_server: int = 0
    ) -> ChatClient:
        """A client with a step's request settings: `config` holds timeout_s, concurrency (connections)
        and max_attempts / backoff_base_s / backoff_max_s (CaptionConfig, CategorizeConfig)."""
        retry = RetryPolicy(config.max_attempts, config.backoff_base_s, config.backoff_max_s)
        return cls(
            api_bases,
            api_key,
            config.timeout_s,
            max_connections=config.concurrency,
            retry=retry,
            first_server=first_server,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _attempt(self, base: str, body: dict) -> tuple[dict, float]:
        start = time.perf_counter()
        try:
            response = await self._client.post(f"{base}/chat/completions", json=body)
        except httpx.TimeoutException as error:
            raise _Retryable(f"timed out ({type(error).__name__}) at {base}") from error
        except httpx.TransportError as error:
            raise _Retryable(f"connection failed at {base} ({type(error).__name__}: {error})") from error
        latency = time.perf_counter() - start
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(
                f"HTTP {response.status_code} from {base}: {_snippet(response.text)}", _retry_after(response)
            )
        if response.status_code >= 400:
            hint = ""
            lowered = response.text.lower()
            if "image" in lowered and ("limit" in lowered or "at most" in lowered):
                hint = (
                    " (start vLLM with --limit-mm-per-prompt '{\"image\": N}', N >= the frames sent per clip)"
                )
            raise RequestFailed(
                f"HTTP {response.status_code} from {base}: {_snippet(response.text)}{hint}", 1, base, latency
            )
        try:
            payload = response.json()
            text, _, _ = parse_reply(payload)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError, AttributeError) as error:
            raise _Retryable(
                f"malformed reply from {base} ({error}): {_snippet(response.text, 120)}"
            ) from error
        if not text:
            raise _Retryable(f"empty reply from {base}")
        return payload, latency

    async def complete(self, body: dict) -> ChatReply:
        """The reply to `body`, or RequestFailed carrying the last reason after the retries ran out."""
        last_reason, base = "no attempt made", self.api_bases[0]
        # Requests start on successive servers; a request's retries then step through the servers from
        # its own start, so with a server down every other attempt still reaches a live one.
        first = next(self._next_start)
        for attempt in range(1, self.retry.max_attempts + 1):
            base = self.api_bases[(first + attempt - 1) % len(self.api_bases)]
            try:
                payload, latency = await self._attempt(base, body)
            except _Retryable as error:
                last_reason = error.reason
                if attempt < self.retry.max_attempts:
                    await asyncio.sleep(self.retry.delay_s(attempt, error.retry_after_s))
                continue
            except RequestFailed as error:
                error.attempts = attempt
                raise
            text, finish_reason, usage = parse_reply(payload)
            return ChatReply(
                text=text,
                finish_reason=finish_reason,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                total_tokens=usage.get("total_tokens"),
                latency_s=latency,
                api_base=base,
                attempts=attempt,
            )
        raise RequestFailed(
            f"{last_reason} (gave up after {self.retry.max_attempts} attempts)", self.retry.max_attempts, base
        )


async def gather_bounded(items: list, worker, concurrency: int) -> list:
    """`await worker(item)` for every item, at most `concurrency` at once; results (or the exception an
    item raised) in the items' order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item):
        async with gate:
            return await worker(item)

    return await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
