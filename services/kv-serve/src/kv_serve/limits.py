"""API keys, per-key token-bucket rate limits, a cap on queued requests and on body size.

:class:`GuardMiddleware` is a plain ASGI middleware (it never buffers a streamed response): it
answers 401 without a valid ``Authorization: Bearer <key>`` (when keys are configured), 413 for a
body over the cap and 429 with ``Retry-After`` when the key's request bucket is empty. Token limits
are charged by the endpoints once they know how many tokens a request asks for
(:meth:`RateLimiter.charge_tokens`). Keys are compared in constant time and never logged: a key is
known inside the service only by a short SHA-256 fingerprint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import anyio.to_thread

Clock = Callable[[], float]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths served without a key: probes and scrapers must not need one.
OPEN_PATHS = frozenset({"/healthz", "/metrics"})


class LimitExceeded(Exception):
    """A request is refused for now (429) or for good (``status_code``)."""

    def __init__(self, message: str, status_code: int = 429, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        if self.status_code == 429:
            return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}
        return {}


class TokenBucket:
    """``capacity`` units, refilled at ``rate_per_s``; :meth:`take` returns the wait in seconds (0
    when taken)."""

    def __init__(self, capacity: float, rate_per_s: float, clock: Clock) -> None:
        self.capacity = capacity
        self.rate_per_s = rate_per_s
        self.level = capacity
        self.clock = clock
        self.updated = clock()

    def take(self, amount: float) -> float:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if amount <= self.level:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate_per_s


def fingerprint(key: str) -> str:
    """A short, non-reversible name for a key (what metrics and logs may show)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class RateLimiter:
    """Per-identity request and token buckets (per minute; 0 turns one off)."""

    def __init__(
        self,
        requests_per_minute: float = 0.0,
        tokens_per_minute: float = 0.0,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.clock = clock
        self._requests: dict[str, TokenBucket] = {}
        self._tokens: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, table: dict[str, TokenBucket], who: str, per_minute: float) -> TokenBucket:
        bucket = table.get(who)
        if bucket is None:
            bucket = table[who] = TokenBucket(per_minute, per_minute / 60.0, self.clock)
        return bucket

    def charge_request(self, who: str) -> None:
        if self.requests_per_minute <= 0:
            return
        with self._lock:
            wait = self._bucket(self._requests, who, self.requests_per_minute).take(1)
        if wait > 0:
            raise LimitExceeded(
                f"Rate limit: more than {self.requests_per_minute:g} requests per minute; "
                f"retry in {math.ceil(wait)} s.",
                retry_after_s=wait,
            )

    def charge_tokens(self, who: str, tokens: int) -> None:
        if self.tokens_per_minute <= 0:
            return
        if tokens > self.tokens_per_minute:
            raise LimitExceeded(
                f"The request needs {tokens} tokens (prompt + max new tokens), more than the "
                f"limit of {self.tokens_per_minute:g} tokens per minute.",
                status_code=400,
            )
        with self._lock:
            wait = self._bucket(self._tokens, who, self.tokens_per_minute).take(tokens)
        if wait > 0:
            raise LimitExceeded(
                f"Rate limit: more than {self.tokens_per_minute:g} tokens per minute; "
                f"retry in {math.ceil(wait)} s.",
                retry_after_s=wait,
            )


class AdmissionGate:
    """At most ``limit`` generation requests in the service at once (running or waiting); more are
    refused with 503 instead of queueing without bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.count >= self.limit:
                raise LimitExceeded(
                    f"The server is full ({self.limit} requests queued or running); retry later.",
                    status_code=503,
                )
            self.count += 1

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


async def _send_error(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class GuardMiddleware:
    """Authentication, the per-key request rate limit and the body size cap, before routing.

    The identity of a request (``scope["state"]["identity"]``) is its key's fingerprint, or
    ``ip:<client address>`` when no keys are configured.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: Iterable[str] = (),
        limiter: RateLimiter | None = None,
        max_body_bytes: int = 1024 * 1024,
        worker_threads: int = 0,
    ) -> None:
        self.app = app
        # Each admitted request holds a worker thread while it waits for its tokens: the pool
        # must hold every admitted request, or the batch is capped at anyio's default of 40.
        self.worker_threads = worker_threads
        self._threads_set = False
        self.keys = tuple(key.encode() for key in api_keys)
        self.limiter = limiter or RateLimiter()
        self.max_body_bytes = max_body_bytes

    def _identity(self, scope: Scope) -> str | None:
        if not self.keys:
            client = scope.get("client")
            return f"ip:{client[0] if client else 'unknown'}"
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                token = token.strip()
                if scheme.lower() != b"bearer" or not token:
                    return None
                matched = False
                for key in self.keys:  # constant time per key; no early exit
                    matched |= hmac.compare_digest(token, key)
                return "key:" + fingerprint(token.decode("latin-1")) if matched else None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._threads_set:
            self._threads_set = True
            limiter = anyio.to_thread.current_default_thread_limiter()
            limiter.total_tokens = max(limiter.total_tokens, self.worker_threads)
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        documentation = path in ("/docs", "/openapi.json", "/redoc")
        identity = self._identity(scope)
        if identity is None and not documentation:
            await _send_error(
                send,
                401,
                "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
                {"WWW-Authenticate": "Bearer"},
            )
            return
        scope.setdefault("state", {})["identity"] = identity
        if scope.get("method") == "POST" and identity is not None:
            try:
                self.limiter.charge_request(identity)
            except LimitExceeded as error:
                await _send_error(send, error.status_code, str(error), error.headers())
                return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit():
                if int(value) > self.max_body_bytes:
                    await _send_error(send, 413, self._too_large(), {})
                    return
        received = 0
        too_large = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # FastAPI turns a failed body read into its own 400: answer 413 instead.
            nonlocal replaced
            if replaced:
                return
            if too_large and message["type"] == "http.response.start":
                replaced = True
                await _send_error(send, 413, self._too_large(), {})
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if not replaced:
                await _send_error(send, 413, self._too_large(), {})

    def _too_large(self) -> str:
        return f"The request body is larger than the limit of {self.max_body_bytes} bytes."
