"""The OpenAI-compatible endpoints through the official ``openai`` client against real uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
import torch
from kv_serve_testing import PROMPT, make_engine, running_server
from openai.types.chat import ChatCompletionMessageParam

from kv_serve.engine import Engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[httpx.Client]:
    with running_server(engine) as http:
        yield http


@pytest.fixture(scope="module")
def oai(client: httpx.Client) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{client.base_url}/v1", api_key="unused", max_retries=0)


MODEL = "preset:tiny"


def test_models_lists_the_served_model(oai: openai.OpenAI) -> None:
    models = oai.models.list()
    assert [m.id for m in models.data] == [MODEL]


def test_completion_matches_generate_and_reports_cached_tokens(
    oai: openai.OpenAI, client: httpx.Client, engine: Engine
) -> None:
    prompt = PROMPT + " Completions."
    plain = client.post(
        "/v1/generate",
        json={
            "prompt": prompt,
            "max_new_tokens": 6,
            "stop_at_eos": False,
            "use_prefix_cache": False,
        },
    ).json()
    first = oai.completions.create(
        model=MODEL, prompt=prompt, max_tokens=6, temperature=0, extra_body={"ignore_eos": True}
    )
    assert first.choices[0].text == plain["text"]
    assert first.choices[0].finish_reason == "length"
    assert first.usage is not None
    assert first.usage.prompt_tokens == len(engine.encode(prompt))
    assert first.usage.completion_tokens == 6
    again = oai.completions.create(
        model=MODEL, prompt=prompt, max_tokens=6, temperature=0, extra_body={"ignore_eos": True}
    )
    assert again.choices[0].text == first.choices[0].text
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    assert (again.usage.prompt_tokens_details.cached_tokens or 0) >= 4  # prefix blocks reused


def test_echo_logprobs_score_the_prompt_as_lm_eval_asks(oai: openai.OpenAI, engine: Engine) -> None:
    ids = engine.encode(PROMPT)
    # lm-evaluation-harness' loglikelihood request: echo, logprobs=1, one new token, greedy.
    response = oai.completions.create(
        model=MODEL, prompt=ids, max_tokens=1, temperature=0, logprobs=1, echo=True
    )
    logprobs = response.choices[0].logprobs
    assert logprobs is not None and logprobs.token_logprobs is not None
    assert logprobs.tokens is not None and logprobs.top_logprobs is not None
    assert len(logprobs.token_logprobs) == len(ids) + 1
    assert [logprobs.token_logprobs[0]] == [None]
    with torch.no_grad():
        logits = engine.model(input_ids=torch.tensor([ids])).logits[0]
    expected = torch.log_softmax(logits.float(), dim=-1)
    for i in range(1, len(ids)):
        assert logprobs.token_logprobs[i] == pytest.approx(float(expected[i - 1, ids[i]]), abs=1e-4)
    # The generated token is the greedy one: it is its own top-1 alternative.
    top = logprobs.top_logprobs[-1]
    assert top is not None and list(top) == [logprobs.tokens[-1]]
    assert response.choices[0].text.startswith(engine.decode(ids))
    # Scoring only: max_tokens 0.
    scored = oai.completions.create(model=MODEL, prompt=ids, max_tokens=0, logprobs=0, echo=True)
    only = scored.choices[0].logprobs
    assert only is not None and only.token_logprobs == logprobs.token_logprobs[:-1]
    assert scored.usage is not None and scored.usage.completion_tokens == 0


def test_streaming_completion_ends_with_done_and_matches(
    oai: openai.OpenAI, client: httpx.Client
) -> None:
    kwargs = {"model": MODEL, "prompt": PROMPT, "max_tokens": 8, "temperature": 0}
    whole = oai.completions.create(
        **kwargs, extra_body={"ignore_eos": True}  # type: ignore[call-overload]
    )
    stream = oai.completions.create(
        **kwargs,  # type: ignore[call-overload]
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].text)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == whole.choices[0].text
    assert usage is not None and usage.completion_tokens == 8
    body = {**kwargs, "stream": True}
    with client.stream("POST", "/v1/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["choices"][0]["finish_reason"] in ("length", "stop")


def test_chat_completion_plain_and_streamed(oai: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Return the sum of the list."},
    ]
    whole = oai.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, temperature=0)
    assert whole.choices[0].message.role == "assistant"
    assert whole.usage is not None and whole.usage.completion_tokens >= 1
    stream = oai.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    content, roles, usage = "", [], None
    for chunk in stream:
        if chunk.choices:
            content += chunk.choices[0].delta.content or ""
            if chunk.choices[0].delta.role:
                roles.append(chunk.choices[0].delta.role)
        if chunk.usage is not None:
            usage = chunk.usage
    assert roles == ["assistant"]
    assert content == whole.choices[0].message.content
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens


def test_chat_sessions_as_extra_body_fields(oai: openai.OpenAI, client: httpx.Client) -> None:
    extra = {"session_id": "oai-chat", "context_key": "topic-a", "ignore_eos": True}
    first = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Return the sum of the list."}],
        max_tokens=4,
        temperature=0,
        extra_body=extra,
    )
    second = oai.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "And the product?"}],
        max_tokens=4,
        temperature=0,
        extra_body=extra,
    )
    assert first.usage is not None and second.usage is not None
    assert second.usage.prompt_tokens_details is not None
    # The second turn reuses the whole first turn from the session cache.
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= first.usage.prompt_tokens
    # prompt_tokens counts the history the reply was conditioned on, so it covers what was cached.
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens
    assert cached <= second.usage.prompt_tokens
    info = client.get("/v1/sessions/oai-chat").json()
    assert info["context_key"] == "topic-a"
    client.delete("/v1/sessions/oai-chat")


def test_stop_strings_cut_the_text(oai: openai.OpenAI) -> None:
    whole = oai.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0, extra_body={"ignore_eos": True}
    )
    text = whole.choices[0].text
    starts = [k for k in range(1, len(text) - 1) if text[k : k + 2].strip()]
    starts = [k for k in starts if text[k : k + 2] not in text[: k + 1]]
    if not starts:
        pytest.skip("the greedy text has no usable stop string")
    stop = text[starts[0] : starts[0] + 2]
    cut = oai.completions.create(
        model=MODEL,
        prompt=PROMPT,
        max_tokens=12,
        temperature=0,
        stop=[stop],
        extra_body={"ignore_eos": True},
    )
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/completions", {"model": "gpt-4", "prompt": "a"}, 404, "Unknown model"),
        ("/v1/completions", {"prompt": "a", "n": 2}, 422, "n"),
        ("/v1/completions", {"prompt": "a", "temperature": float("nan")}, 422, "finite"),
        ("/v1/completions", {"prompt": ""}, 422, "prompt is empty"),
        ("/v1/completions", {"prompt": [10**6]}, 422, "token_ids must be in"),
        ("/v1/completions", {"prompt": "a", "max_tokens": 10**6}, 422, "max_new_tokens"),
        ("/v1/chat/completions", {"messages": []}, 422, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "a"}]}, 422, "role"),
    ],
)
def test_bad_openai_requests_are_4xx(
    client: httpx.Client, path: str, body: dict[str, object], status: int, fragment: str
) -> None:
    content = json.dumps(body).encode()  # allow_nan: NaN goes on the wire as NaN
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_openai_client_raises_on_4xx(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.completions.create(model="no-such-model", prompt="a", max_tokens=1)
