"""API keys, rate limits, the queue cap and the body cap, over real HTTP."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import openai
import pytest
from kv_serve_testing import PROMPT, FakeClock, make_engine, running_server

from kv_serve.app import Limits
from kv_serve.limits import LimitExceeded, RateLimiter, TokenBucket

KEYS = ("key-alpha-123456", "key-bravo-654321")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_token_bucket_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(capacity=2, rate_per_s=0.5, clock=clock)
    assert bucket.take(1) == 0 and bucket.take(1) == 0
    assert bucket.take(1) == pytest.approx(2.0)  # one unit at 0.5/s
    clock.advance(2.0)
    assert bucket.take(1) == 0


def test_rate_limiter_is_per_identity_and_says_when_to_retry() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=100, clock=clock)
    limiter.charge_request("a")
    limiter.charge_request("a")
    with pytest.raises(LimitExceeded) as error:
        limiter.charge_request("a")
    assert error.value.status_code == 429 and error.value.headers() == {"Retry-After": "30"}
    limiter.charge_request("b")  # another key has its own bucket
    limiter.charge_tokens("a", 60)
    with pytest.raises(LimitExceeded):
        limiter.charge_tokens("a", 60)
    with pytest.raises(LimitExceeded) as never:
        limiter.charge_tokens("b", 101)
    assert never.value.status_code == 400 and "more than the limit" in str(never.value)


def test_api_keys_guard_everything_but_health_and_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with running_server(make_engine(), Limits(api_keys=KEYS)) as client:
        body = {"prompt": PROMPT, "max_new_tokens": 2}
        missing = client.post("/v1/generate", json=body)
        assert missing.status_code == 401 and "API key" in missing.json()["error"]
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.post("/v1/generate", json=body, headers=bearer("key-wrong-000000"))
        assert wrong.status_code == 401
        assert client.get("/v1/cache/stats").status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Basic abc"}).status_code == 401
        for key in KEYS:
            ok = client.post("/v1/generate", json=body, headers=bearer(key))
            assert ok.status_code == 200, ok.text
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        oai = openai.OpenAI(base_url=f"{client.base_url}/v1", api_key=KEYS[1], max_retries=0)
        assert oai.completions.create(model="preset:tiny", prompt=PROMPT, max_tokens=2).choices
        bad = openai.OpenAI(
            base_url=f"{client.base_url}/v1", api_key="nope-nope-nope", max_retries=0
        )
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
    assert not any(key in caplog.text for key in KEYS)


def test_request_rate_limit_is_429_with_retry_after() -> None:
    limits = Limits(api_keys=KEYS, requests_per_minute=2)
    with running_server(make_engine(), limits) as client:
        body = {"prompt": PROMPT, "max_new_tokens": 1}
        for _ in range(2):
            assert (
                client.post("/v1/generate", json=body, headers=bearer(KEYS[0])).status_code == 200
            )
        limited = client.post("/v1/generate", json=body, headers=bearer(KEYS[0]))
        assert limited.status_code == 429 and "requests per minute" in limited.json()["error"]
        assert int(limited.headers["retry-after"]) >= 1
        # The other key is not limited; reads are not charged.
        assert client.post("/v1/generate", json=body, headers=bearer(KEYS[1])).status_code == 200
        assert client.get("/v1/cache/stats", headers=bearer(KEYS[0])).status_code == 200


def test_token_rate_limit_charges_prompt_and_new_tokens() -> None:
    engine = make_engine()
    prompt_tokens = len(engine.encode(PROMPT))
    limits = Limits(tokens_per_minute=prompt_tokens + 10)
    with running_server(engine, limits) as client:
        body = {"prompt": PROMPT, "max_new_tokens": 8}
        assert client.post("/v1/generate", json=body).status_code == 200
        limited = client.post("/v1/generate", json=body)
        assert limited.status_code == 429 and "tokens per minute" in limited.json()["error"]
        assert "retry-after" in limited.headers
        too_big = client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 100})
        assert too_big.status_code == 400


def test_queue_cap_answers_503_when_full() -> None:
    with running_server(make_engine(), Limits(max_queued=1)) as client:
        body = {"prompt": PROMPT, "max_new_tokens": 150, "stream": True, "stop_at_eos": False}
        started = threading.Event()
        with client.stream("POST", "/v1/generate", json=body) as holding:
            assert holding.status_code == 200
            lines = holding.iter_lines()
            next(line for line in lines if line.startswith("data: "))
            started.set()
            full = client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 1})
            assert full.status_code == 503 and "full" in full.json()["error"]
        # The slot is free again once the server sees the stream closed.
        deadline = time.monotonic() + 30
        while True:
            ok = client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 1})
            if ok.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert ok.status_code == 200, ok.text


def test_body_size_cap_is_413() -> None:
    with running_server(make_engine(), Limits(max_body_bytes=2048)) as client:
        big = {"prompt": "a " * 4000, "max_new_tokens": 1}
        response = client.post("/v1/generate", json=big)
        assert response.status_code == 413 and "larger than the limit" in response.json()["error"]

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b" " * 1000  # no Content-Length: chunked upload

        chunked = client.post(
            "/v1/generate", content=chunks(), headers={"content-type": "application/json"}
        )
        assert chunked.status_code == 413
        assert (
            client.post("/v1/generate", json={"prompt": PROMPT, "max_new_tokens": 1}).status_code
            == 200
        )
