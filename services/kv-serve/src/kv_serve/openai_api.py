"""OpenAI-compatible endpoints: ``/v1/completions``, ``/v1/chat/completions``, ``/v1/models``.

Requests and responses follow OpenAI's HTTP API, so the official ``openai`` client and tools built
on it (lm-evaluation-harness' ``local-completions``) work unchanged. kv-serve's own options ride
along as extra body fields, as vLLM does: ``session_id``, ``context_key``, ``use_prefix_cache``,
``top_k`` and ``ignore_eos`` (``extra_body=`` in the ``openai`` client). ``usage`` reports
``prompt_tokens_details.cached_tokens``: the prompt tokens a session or prefix cache supplied.

``echo`` with ``logprobs`` returns the prompt's own token log-probabilities (the first is ``null``),
with ``max_tokens`` 0 for scoring only, as the harness asks for log-likelihoods. Unknown body fields
are ignored (OpenAI clients send more than a server needs); ``n`` and ``best_of`` above 1 are
refused.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal, Protocol

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kv_serve.engine import BadRequest, Engine, Generation, GenerationParams, TokenLogprob

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
MAX_TOP_LOGPROBS = 20

# Used when the tokenizer has no chat template of its own (the presets' BPE has none).
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "### {{ message['role'] | capitalize }}:\n{{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}### Assistant:\n{% endif %}"
)


class StartFn(Protocol):
    def __call__(
        self,
        request: Request,
        ids: list[int],
        params: GenerationParams,
        *,
        session_id: str | None = None,
        context_key: str | None = None,
        use_prefix_cache: bool = True,
    ) -> Generation: ...


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    model: str | None = None
    max_tokens: int | None = Field(None, ge=0)
    temperature: float = Field(1.0, ge=0.0, le=100.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=1, description="only 1 is supported")
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    # kv-serve's extra fields
    top_k: int = Field(0, ge=0)
    session_id: str | None = Field(None, pattern=SESSION_ID_PATTERN)
    context_key: str | None = Field(None, max_length=256)
    use_prefix_cache: bool = True
    ignore_eos: bool = False

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
        if len(stops) > 4 or any(not s for s in stops):
            raise BadRequest("stop: at most 4 non-empty strings.", 422)
        return stops

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class CompletionRequest(_Common):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=0)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    best_of: int | None = Field(None, ge=1, le=1, description="only 1 is supported")
    suffix: str | None = None

    @model_validator(mode="after")
    def _check(self) -> CompletionRequest:
        if self.suffix:
            raise ValueError("suffix is not supported")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt is empty")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadRequest("Only text content parts are supported.", 422)
            parts.append(part["text"])
        return "".join(parts)


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)


def chat_prompt(engine: Engine, messages: list[ChatMessage]) -> list[int]:
    """The token ids of ``messages`` under the tokenizer's chat template (a plain ``### Role:``
    template when it has none), ending with the assistant's turn."""
    tokenizer = engine.tokenizer
    conversation = [{"role": m.role, "content": m.text()} for m in messages]
    template = getattr(tokenizer, "chat_template", None) or DEFAULT_CHAT_TEMPLATE
    text = tokenizer.apply_chat_template(
        conversation, chat_template=template, add_generation_prompt=True, tokenize=False
    )
    if not isinstance(text, str):
        raise BadRequest("The chat template did not produce text.", 500)
    return engine.encode(text)


def _prompts(
    engine: Engine, prompt: str | list[str] | list[int] | list[list[int]]
) -> list[list[int]]:
    if isinstance(prompt, str):
        texts: list[str] = [prompt]
    elif all(isinstance(p, str) for p in prompt):
        texts = [p for p in prompt if isinstance(p, str)]
    elif all(isinstance(p, int) for p in prompt):
        return [[p for p in prompt if isinstance(p, int)]]
    else:
        return [list(p) for p in prompt if isinstance(p, list)]
    out = []
    for text in texts:
        if not text.strip():
            raise BadRequest("prompt is empty", 422)
        out.append(engine.encode(text))
    return out


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def _usage(prompt: int, completion: int, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _sse(payload: dict[str, Any]) -> str:
    return "data: " + json.dumps(payload) + "\n\n"


class _Run:
    """Drives a :class:`Generation` and applies stop strings; collects text and logprobs."""

    def __init__(self, generation: Generation, stops: list[str]) -> None:
        self.engine = generation.engine
        self.generation = generation
        self.stops = stops
        self.text = ""
        self.token_ids: list[int] = []
        self.logprobs: list[TokenLogprob] = []
        self.finish_reason = "length"

    def deltas(self) -> Iterator[tuple[str, TokenLogprob | None]]:
        """Yield each new piece of text (held back while it could still start a stop string)."""
        sent = 0
        hold = max((len(s) - 1 for s in self.stops), default=0)
        for event in self.generation:
            self.token_ids.append(event.token_id)
            if event.logprob is not None:
                self.logprobs.append(event.logprob)
            # Decode the whole completion: a character split over tokens is sent once complete.
            self.text = self.engine.decode(self.token_ids)
            if self.text.endswith("\ufffd"):
                continue
            for stop in self.stops:
                where = self.text.find(stop)
                if where >= 0:
                    self.text = self.text[:where]
                    self.finish_reason = "stop"
                    if len(self.text) > sent:
                        yield self.text[sent:], None
                    return
            safe = len(self.text) - hold
            if safe > sent:
                yield self.text[sent:safe], event.logprob
                sent = safe
        result = self.generation.result
        if result is not None and result.finish_reason == "stop":
            self.finish_reason = "stop"
        if len(self.text) > sent:
            yield self.text[sent:], None

    def prompt_tokens(self) -> int:
        """Every token the reply was conditioned on: a session's history and the new prompt (so that
        ``cached_tokens`` never exceeds it, as in OpenAI's usage)."""
        return len(self.generation.tokens)

    def cached_tokens(self) -> int:
        result = self.generation.result
        return result.reused_tokens if result is not None else 0


def _completion_logprobs(
    engine: Engine,
    ids: list[int],
    scored: list[TokenLogprob | None],
    start_offset: int = 0,
) -> dict[str, Any]:
    tokens = [engine.decode([t]) for t in ids]
    offsets = []
    offset = start_offset
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": [s.logprob if s is not None else None for s in scored],
        "top_logprobs": [
            {engine.decode([t]): lp for t, lp in s.top.items()} if s is not None else None
            for s in scored
        ],
        "text_offset": offsets,
    }


def add_openai_routes(
    app: FastAPI,
    engine: Engine,
    start: StartFn,
    record: Callable[[Generation], None],
) -> None:
    """Register the OpenAI-compatible routes on ``app``."""
    created = int(time.time())

    def check_model(name: str | None) -> None:
        if name is not None and name not in (engine.model_name, "default"):
            raise BadRequest(
                f"Unknown model {name!r}: this server serves {engine.model_name!r} "
                "(see GET /v1/models).",
                404,
            )

    def params_of(body: _Common, max_tokens: int, logprobs: int | None) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=max_tokens,
            temperature=body.temperature,
            top_k=body.top_k,
            top_p=body.top_p,
            seed=body.seed,
            stop_at_eos=not body.ignore_eos,
            logprobs=logprobs,
        )

    def default_max_tokens(prompt_len: int, history: int = 0) -> int:
        room = engine.context_length - prompt_len - history
        return max(1, min(engine.max_new_tokens_limit, room))

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        """The served model, in OpenAI's list format."""
        return {
            "object": "list",
            "data": [
                {
                    "id": engine.model_name,
                    "object": "model",
                    "created": created,
                    "owned_by": "kv-serve",
                    "max_model_len": engine.context_length,
                }
            ],
        }

    @app.post("/v1/completions")
    def completions(body: CompletionRequest, request: Request) -> Any:
        """OpenAI text completions (``echo`` and ``logprobs`` included)."""
        check_model(body.model)
        prompts = _prompts(engine, body.prompt)
        stops = body.stops()
        if body.stream and len(prompts) > 1:
            raise BadRequest("Streaming takes a single prompt.", 422)
        if len(prompts) > 1 and body.session_id is not None:
            raise BadRequest("A session takes a single prompt.", 422)
        max_tokens = body.max_tokens if body.max_tokens is not None else 16
        completion_id = _id("cmpl")
        model = engine.model_name
        for ids in prompts:
            engine.check_tokens(ids)
        if body.stream:
            return _stream_completion(body, request, prompts[0], max_tokens, stops, completion_id)
        choices = []
        prompt_total = completion_total = cached_total = 0
        for index, ids in enumerate(prompts):
            prompt_text = engine.decode(ids)
            scored: list[TokenLogprob | None] = []
            if max_tokens == 0:  # scoring only: charged here, as start() charges generations
                who = str(getattr(request.state, "identity", None) or "anonymous")
                request.app.state.limiter.charge_tokens(who, len(ids))
            if body.echo and body.logprobs is not None:
                scored = [None, *engine.score(ids, body.logprobs)]
            run: _Run | None = None
            if max_tokens > 0:
                generation = start(
                    request,
                    ids,
                    params_of(body, max_tokens, body.logprobs),
                    session_id=body.session_id,
                    context_key=body.context_key,
                    use_prefix_cache=body.use_prefix_cache,
                )
                run = _Run(generation, stops)
                with generation:
                    for _ in run.deltas():
                        pass
                record(generation)
            elif body.session_id is not None:
                raise BadRequest("max_tokens 0 (scoring) does not use a session.", 422)
            else:
                engine.check_tokens(ids)
            text = run.text if run is not None else ""
            new_ids = run.token_ids if run is not None else []
            logprobs = None
            if body.logprobs is not None:
                gen_scored: list[TokenLogprob | None] = list(run.logprobs) if run else []
                kept = len(engine.encode(text)) if run and run.finish_reason == "stop" else None
                gen_ids = new_ids[: len(gen_scored)]
                if kept is not None:
                    gen_ids, gen_scored = gen_ids[:kept], gen_scored[:kept]
                all_ids = (ids if body.echo else []) + gen_ids
                logprobs = _completion_logprobs(
                    engine, all_ids, (scored if body.echo else []) + gen_scored
                )
            choices.append(
                {
                    "index": index,
                    "text": (prompt_text if body.echo else "") + text,
                    "logprobs": logprobs,
                    "finish_reason": run.finish_reason if run is not None else "length",
                }
            )
            prompt_total += run.prompt_tokens() if run is not None else len(ids)
            completion_total += len(new_ids)
            cached_total += run.cached_tokens() if run is not None else 0
        return {
            "id": completion_id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": _usage(prompt_total, completion_total, cached_total),
        }

    def _stream_completion(
        body: CompletionRequest,
        request: Request,
        ids: list[int],
        max_tokens: int,
        stops: list[str],
        completion_id: str,
    ) -> Any:
        if max_tokens < 1:
            raise BadRequest("Streaming needs max_tokens of at least 1.", 422)
        generation = start(
            request,
            ids,
            params_of(body, max_tokens, body.logprobs),
            session_id=body.session_id,
            context_key=body.context_key,
            use_prefix_cache=body.use_prefix_cache,
        )
        run = _Run(generation, stops)

        def chunk(text: str, finish: str | None, logprobs: Any = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "text_completion",
                "created": int(time.time()),
                "model": engine.model_name,
                "choices": [
                    {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}
                ],
            }

        def events() -> Iterator[str]:
            with generation:
                try:
                    if body.echo:
                        yield _sse(chunk(engine.decode(ids), None))
                    for text, scored in run.deltas():
                        logprobs = None
                        if body.logprobs is not None and scored is not None:
                            logprobs = _completion_logprobs(engine, [scored.token_id], [scored])
                        yield _sse(chunk(text, None, logprobs))
                except Exception as error:  # the status is sent already: report in-band
                    yield _sse({"error": {"message": str(error), "type": "server_error"}})
                    return
            record(generation)
            yield _sse(chunk("", run.finish_reason))
            if body.include_usage():
                usage = _usage(run.prompt_tokens(), len(run.token_ids), run.cached_tokens())
                yield _sse({**chunk("", None), "choices": [], "usage": usage})
            yield "data: [DONE]\n\n"

        cleanup = BackgroundTasks()
        cleanup.add_task(generation.close)
        return StreamingResponse(events(), media_type="text/event-stream", background=cleanup)

    @app.post("/v1/chat/completions")
    def chat_completions(body: ChatRequest, request: Request) -> Any:
        """OpenAI chat completions: the messages through the chat template, then generation."""
        check_model(body.model)
        stops = body.stops()
        if body.session_id is not None:
            # With a session the server holds the history: send only the new messages.
            ids = engine.encode(
                "".join(f"### {m.role.capitalize()}:\n{m.text()}\n\n" for m in body.messages)
                + "### Assistant:\n"
            )
        else:
            ids = chat_prompt(engine, body.messages)
        limit = body.max_completion_tokens or body.max_tokens
        max_tokens = limit if limit else default_max_tokens(len(ids))
        if max_tokens < 1:
            raise BadRequest("max_tokens must be at least 1.", 422)
        top = body.top_logprobs or 0
        generation = start(
            request,
            ids,
            params_of(body, max_tokens, top if body.logprobs else None),
            session_id=body.session_id,
            context_key=body.context_key,
            use_prefix_cache=body.use_prefix_cache,
        )
        run = _Run(generation, stops)
        chat_id = _id("chatcmpl")

        def logprob_content(items: list[TokenLogprob]) -> list[dict[str, Any]]:
            return [
                {
                    "token": engine.decode([s.token_id]),
                    "logprob": s.logprob,
                    "bytes": list(engine.decode([s.token_id]).encode()),
                    "top_logprobs": [
                        {"token": engine.decode([t]), "logprob": lp, "bytes": None}
                        for t, lp in s.top.items()
                    ],
                }
                for s in items
            ]

        if not body.stream:
            with generation:
                for _ in run.deltas():
                    pass
            record(generation)
            return {
                "id": chat_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": engine.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": run.text},
                        "logprobs": (
                            {"content": logprob_content(run.logprobs)} if body.logprobs else None
                        ),
                        "finish_reason": run.finish_reason,
                    }
                ],
                "usage": _usage(run.prompt_tokens(), len(run.token_ids), run.cached_tokens()),
            }

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": chat_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": engine.model_name,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }

        def events() -> Iterator[str]:
            with generation:
                try:
                    yield _sse(chunk({"role": "assistant", "content": ""}, None))
                    for text, _scored in run.deltas():
                        yield _sse(chunk({"content": text}, None))
                except Exception as error:  # the status is sent already: report in-band
                    yield _sse({"error": {"message": str(error), "type": "server_error"}})
                    return
            record(generation)
            yield _sse(chunk({}, run.finish_reason))
            if body.include_usage():
                usage = _usage(run.prompt_tokens(), len(run.token_ids), run.cached_tokens())
                yield _sse({**chunk({}, None), "choices": [], "usage": usage})
            yield "data: [DONE]\n\n"

        cleanup = BackgroundTasks()
        cleanup.add_task(generation.close)
        return StreamingResponse(events(), media_type="text/event-stream", background=cleanup)
