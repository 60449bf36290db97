"""The service over real HTTP: a uvicorn server on 127.0.0.1 in a thread, the tiny model."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import torch
from kv_serve_testing import PROMPT, FakeClock, make_engine, running_server

from kv_serve.engine import Engine, GenerationResult, generate_tokens


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[httpx.Client]:
    with running_server(engine) as http:
        yield http


def reference(engine: Engine, ids: list[int], n: int) -> list[int]:
    """Greedy tokens with no cache at all: every step reruns the whole sequence."""
    return generate_tokens(engine.model, ids, n, use_cache=False)


def gen(client: httpx.Client, **body: object) -> dict[str, Any]:
    body.setdefault("stop_at_eos", False)
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_health_docs_and_metrics(client: httpx.Client) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["context_length"] == 256
    openapi = client.get("/openapi.json").json()
    assert "/v1/generate" in openapi["paths"]
    # The response schema is the engine's GenerationResult, field for field.
    result_fields = {field.name for field in dataclasses.fields(GenerationResult)}
    assert set(openapi["components"]["schemas"]["GenerationResult"]["properties"]) == result_fields
    assert client.get("/docs").status_code == 200
    gen(client, prompt=PROMPT, max_new_tokens=2)
    metrics = client.get("/metrics").text
    for name in ("kv_cache_bytes", "kv_requests_total", "kv_cache_prefix_hits_total"):
        assert name in metrics


def test_reused_prefix_gives_the_same_greedy_tokens(client: httpx.Client, engine: Engine) -> None:
    ids = engine.encode(PROMPT + " Another sentence about the tuple.")
    expected = reference(engine, ids, 12)
    cold = gen(client, token_ids=ids, max_new_tokens=12, use_prefix_cache=False)
    assert cold["token_ids"] == expected and cold["reused_tokens"] == 0
    first = gen(client, token_ids=ids, max_new_tokens=12)
    warm = gen(client, token_ids=ids, max_new_tokens=12)
    assert first["token_ids"] == warm["token_ids"] == expected
    assert warm["reused_tokens"] == (len(ids) - 1) // 4 * 4 > 0
    reused = int(warm["reused_tokens"])
    assert warm["processed_tokens"] == len(ids) - reused + 11
    # A different continuation of the same prefix reuses the shared blocks only.
    other = ids[:8] + engine.encode(" mapping of the iterator")
    result = gen(client, token_ids=other, max_new_tokens=6)
    assert result["reused_tokens"] == 8
    assert result["token_ids"] == reference(engine, other, 6)
    assert result["text"] == engine.decode(result["token_ids"])


def test_session_turns_process_only_new_tokens(client: httpx.Client, engine: Engine) -> None:
    turn1 = gen(client, prompt=PROMPT, max_new_tokens=8, session_id="chat-1")
    assert turn1["session_id"] == "chat-1" and not turn1["session_hit"]
    follow = " What is the length of the tuple?"
    turn2 = gen(client, prompt=follow, max_new_tokens=8, session_id="chat-1")
    history = engine.encode(PROMPT) + turn1["token_ids"]
    full = history + engine.encode(follow)
    assert turn2["session_hit"]
    assert turn2["reused_tokens"] == len(history) - 1  # the last sampled token never ran
    assert turn2["processed_tokens"] == len(full) - len(history) + 1 + 7
    assert turn2["token_ids"] == reference(engine, full, 8)
    info = client.get("/v1/sessions/chat-1").json()
    assert info["tokens"] == len(full) + 8 and info["turns"] == 2
    assert client.delete("/v1/sessions/chat-1").status_code == 200
    assert client.get("/v1/sessions/chat-1").status_code == 404
    assert client.delete("/v1/sessions/chat-1").status_code == 404


def test_context_switch_drops_the_old_cache(client: httpx.Client, engine: Engine) -> None:
    body = {"max_new_tokens": 4, "session_id": "ctx", "use_prefix_cache": False}
    gen(client, prompt="The product is a list.", context_key="product-a", **body)
    same = gen(client, prompt=" More.", context_key="product-a", **body)
    assert same["session_hit"] and not same["context_switched"]
    switched = gen(client, prompt="The file object is closed.", context_key="product-b", **body)
    assert switched["context_switched"] and not switched["session_hit"]
    assert switched["reused_tokens"] == 0
    ids = engine.encode("The file object is closed.")
    assert switched["token_ids"] == reference(engine, ids, 4)
    assert client.get("/v1/sessions/ctx").json()["context_key"] == "product-b"


def test_streaming_matches_the_plain_response(client: httpx.Client) -> None:
    body = {"prompt": PROMPT, "max_new_tokens": 6, "stop_at_eos": False, "stream": True}
    tokens: list[int] = []
    done: dict[str, object] = {}
    with client.stream("POST", "/v1/generate", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = "message"
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                payload = json.loads(line[len("data: ") :])
                if event == "done":
                    done = payload
                else:
                    tokens.append(payload["token_id"])
                event = "message"
    assert tokens == done["token_ids"]
    plain = gen(client, prompt=PROMPT, max_new_tokens=6)
    assert plain["token_ids"] == tokens


def test_sampling_is_reproducible_with_a_seed(client: httpx.Client) -> None:
    body = {"prompt": PROMPT, "max_new_tokens": 10, "temperature": 1.0, "top_k": 50, "top_p": 0.9}
    a = gen(client, seed=7, **body)
    b = gen(client, seed=7, **body)
    assert a["token_ids"] == b["token_ids"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"prompt": ""}, 422, "prompt is empty"),
        ({"prompt": "   "}, 422, "prompt is empty"),
        ({"token_ids": []}, 422, "token_ids is empty"),
        ({}, 422, "send a prompt or token_ids"),
        ({"prompt": "a", "token_ids": [1]}, 422, "not both"),
        ({"prompt": "a", "max_new_tokens": -1}, 422, "max_new_tokens"),
        ({"prompt": "a", "max_new_tokens": 0}, 422, "max_new_tokens"),
        ({"prompt": "a", "max_new_tokens": 10**9}, 422, "max_new_tokens"),
        ({"prompt": "a", "max_new_tokens": 201}, 422, "between 1 and 200"),
        ({"token_ids": [1] * 300}, 413, "exceed the model context of 256"),
        ({"token_ids": [1] * 250, "max_new_tokens": 10}, 400, "exceed the model context"),
        ({"token_ids": [10**6]}, 422, "token_ids must be in"),
        ({"prompt": "a", "temperature": -1}, 422, "temperature"),
        ({"prompt": "a", "session_id": "bad id/../x"}, 422, "session_id"),
        ({"prompt": "a", "unknown_field": 1}, 422, "unknown_field"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(
    client: httpx.Client, body: dict[str, object], status: int, fragment: str
) -> None:
    response = client.post("/v1/generate", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]
    assert client.get("/healthz").status_code == 200


def test_malformed_json_and_unknown_session(client: httpx.Client) -> None:
    response = client.post(
        "/v1/generate", content=b'{"prompt": "a",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and "JSON" in response.json()["error"]
    response = client.delete("/v1/sessions/never-made")
    assert response.status_code == 404 and "Unknown session" in response.json()["error"]
    assert client.get("/v1/sessions/never-made").status_code == 404
    # Still serving.
    assert gen(client, prompt=PROMPT, max_new_tokens=2)["token_ids"]


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_body_not_labelled_json_is_a_415_naming_the_header(
    client: httpx.Client, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/generate", content=b'{"prompt": "a"}', headers=headers)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert "Content-Type: application/json" in error
    assert (repr(content_type) if content_type else "no Content-Type") in error
    labelled = client.post(
        "/v1/generate",
        content=b'{"prompt": "a", "max_new_tokens": 1}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert labelled.status_code == 200, labelled.text


def test_session_too_long_for_the_context(client: httpx.Client, engine: Engine) -> None:
    gen(client, token_ids=[5] * 200, max_new_tokens=10, session_id="long", use_prefix_cache=False)
    response = client.post(
        "/v1/generate", json={"token_ids": [5] * 40, "max_new_tokens": 10, "session_id": "long"}
    )
    assert response.status_code == 400 and "session history" in response.json()["error"]
    # The failed turn released the session: the next request on it is served.
    assert gen(client, token_ids=[6], max_new_tokens=2, session_id="long")["session_hit"]
    client.delete("/v1/sessions/long")


def test_concurrent_requests_on_one_session_are_serialised(
    client: httpx.Client, engine: Engine
) -> None:
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def turn() -> None:
        try:
            results.append(gen(client, prompt=" and then", max_new_tokens=3, session_id="same"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=turn) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    info = client.get("/v1/sessions/same").json()
    new = len(engine.encode(" and then"))
    assert info["turns"] == 6 and info["tokens"] == 6 * (new + 3)
    # Each turn saw every earlier turn: the reused history grows by one turn each time.
    assert sorted(r["reused_tokens"] for r in results) == [
        max(0, k * (new + 3) - 1) for k in range(6)
    ]


def test_concurrent_sessions_do_not_corrupt_each_other(
    client: httpx.Client, engine: Engine
) -> None:
    prompts = [f"Return the {w} of the tuple." for w in ("sum", "length", "maximum", "product")]
    follow = " The list is long."
    expected = {}
    for i, prompt in enumerate(prompts):
        first = reference(engine, engine.encode(prompt), 5)
        full = engine.encode(prompt) + first + engine.encode(follow)
        expected[i] = (first, reference(engine, full, 5))
    got: dict[int, tuple[object, object]] = {}

    def conversation(i: int) -> None:
        sid = f"par-{i}"
        a = gen(client, prompt=prompts[i], max_new_tokens=5, session_id=sid)
        b = gen(client, prompt=follow, max_new_tokens=5, session_id=sid)
        got[i] = (a["token_ids"], b["token_ids"])

    threads = [threading.Thread(target=conversation, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == expected


def test_ttl_expiry_over_http_with_an_injected_clock() -> None:
    clock = FakeClock()
    engine = make_engine(clock=clock, session_ttl_s=30, prefix_ttl_s=60)
    with running_server(engine) as client:
        gen(client, prompt=PROMPT, max_new_tokens=4, session_id="ttl")
        clock.advance(20)
        assert gen(client, prompt=" more", max_new_tokens=4, session_id="ttl")["session_hit"]
        clock.advance(29)
        assert client.get("/v1/sessions/ttl").status_code == 200
        clock.advance(2)  # 31 s idle
        assert client.get("/v1/sessions/ttl").status_code == 404
        stats = client.get("/v1/cache/stats").json()
        assert stats["expirations"] >= 1 and stats["sessions"] == 0
        clock.advance(60)
        stats = client.get("/v1/cache/stats").json()
        assert stats["prefix_blocks"] == 0 and stats["bytes"] == 0
        # An expired session starts afresh.
        again = gen(client, prompt=PROMPT, max_new_tokens=4, session_id="ttl")
        assert not again["session_hit"]


def test_eviction_under_a_tiny_budget() -> None:
    per_token = make_engine().kv_shape.bytes_per_token()
    budget = 60 * per_token
    engine = make_engine(budget_bytes=budget)
    with running_server(engine) as client:
        outputs = []
        for i in range(5):
            ids = engine.encode(f"Session {i}: " + PROMPT)
            outputs.append((ids, gen(client, token_ids=ids, max_new_tokens=6, session_id=f"e{i}")))
        stats = client.get("/v1/cache/stats").json()
        assert stats["evictions"] > 0
        assert 0 < stats["bytes"] <= budget
        assert stats["bytes_per_token"] == per_token
        # Evicted caches are recomputed: answers stay exact.
        for ids, out in outputs:
            assert out["token_ids"] == reference(engine, ids, 6)
        # The oldest session lost its cache but kept its history.
        info = client.get("/v1/sessions/e0").json()
        assert info["tokens"] > 0 and info["cached_tokens"] == 0
        turn = gen(client, prompt=" next", max_new_tokens=3, session_id="e0")
        assert not turn["session_hit"]


def test_fp16_storage_halves_bytes_and_still_generates() -> None:
    fp32 = make_engine()
    fp16 = make_engine(storage_dtype=torch.float16)
    ids = fp32.encode(PROMPT)
    with running_server(fp16) as client:
        gen(client, token_ids=ids, max_new_tokens=4, session_id="h")
        half = client.get("/v1/cache/stats").json()
        assert half["storage_dtype"] == "float16"
        warm = gen(client, token_ids=ids, max_new_tokens=4)
        assert warm["reused_tokens"] > 0
    with running_server(fp32) as client:
        gen(client, token_ids=ids, max_new_tokens=4, session_id="h")
        full = client.get("/v1/cache/stats").json()
    assert half["bytes"] * 2 == full["bytes"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "a", "temperature": NaN}',
        b'{"prompt": "a", "top_p": Infinity}',
        b'{"prompt": "a", "temperature": -Infinity}',
        b'{"prompt": "a", "unknown": NaN}',
        b'{"prompt": "a", "max_new_tokens": NaN}',
    ],
)
def test_non_finite_numbers_are_422_not_500(client: httpx.Client, raw: bytes) -> None:
    response = client.post(
        "/v1/generate", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("Invalid request")
    assert client.get("/healthz").status_code == 200


def test_unknown_paths_and_methods_answer_in_the_error_shape(client: httpx.Client) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404 and "/v1/nothing-here" in missing.json()["error"]
    wrong = client.put("/v1/generate", json={})
    assert wrong.status_code == 405 and "PUT" in wrong.json()["error"]
    assert "POST" in wrong.headers["allow"]


def test_health_flags_random_weights_and_stats_follow_storage_dtype() -> None:
    engine = make_engine(storage_dtype=torch.float16)
    with running_server(engine) as http:
        health = http.get("/healthz").json()
        assert health["random_weights"] is True and health["model"] == "preset:tiny"
        stats = http.get("/v1/cache/stats").json()
        assert stats["bytes_per_token"] == engine.kv_shape.bytes_per_token(torch.float16)
        assert stats["bytes_per_token"] * 2 == engine.kv_shape.bytes_per_token(torch.float32)
        ids = engine.encode(PROMPT)
        gen(http, token_ids=ids, max_new_tokens=2)
        gen(http, token_ids=ids, max_new_tokens=2)
        assert http.get("/v1/cache/stats").json()["prefix_hits"] >= 1
        cleared = http.delete("/v1/cache").json()
        assert cleared["prefix_hits"] == 0 and cleared["hits"] == 0 and cleared["bytes"] == 0
