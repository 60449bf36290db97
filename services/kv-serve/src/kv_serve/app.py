"""The FastAPI application: generation, sessions, cache stats, health and metrics."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from kv_serve.engine import BadRequest, Engine, Generation, GenerationParams, GenerationResult
from kv_serve.limits import AdmissionGate, GuardMiddleware, LimitExceeded, RateLimiter
from kv_serve.openai_api import add_openai_routes

# Far above any model context here; requests past the engine's own limit get a clear 422.
MAX_NEW_TOKENS_FIELD_LIMIT = 1_000_000
SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


class GenerateRequest(BaseModel):
    """A generation request: a prompt (text or token ids) and sampling options."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    prompt: str | None = Field(None, description="text to continue (or send token_ids)")
    token_ids: list[int] | None = Field(None, description="prompt as token ids")
    max_new_tokens: int = Field(32, ge=1, le=MAX_NEW_TOKENS_FIELD_LIMIT)
    temperature: float = Field(0.0, ge=0.0, le=100.0, description="0 = greedy")
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, description="sampling seed (reproducible outputs)")
    session_id: str | None = Field(
        None, pattern=SESSION_ID_PATTERN, description="keep the KV cache between turns"
    )
    context_key: str | None = Field(
        None, max_length=256, description="a different key drops the session's cache"
    )
    stream: bool = Field(False, description="stream tokens as server-sent events")
    use_prefix_cache: bool = True
    stop_at_eos: bool = True

    @model_validator(mode="after")
    def _one_prompt(self) -> GenerateRequest:
        if self.prompt is None and self.token_ids is None:
            raise ValueError("send a prompt or token_ids")
        if self.prompt is not None and self.token_ids is not None:
            raise ValueError("send either prompt or token_ids, not both")
        if self.prompt is not None and not self.prompt.strip():
            raise ValueError("prompt is empty")
        if self.token_ids is not None and not self.token_ids:
            raise ValueError("token_ids is empty")
        return self

    def params(self) -> GenerationParams:
        """The request's sampling options, as the engine takes them."""
        names = [field.name for field in dataclasses.fields(GenerationParams)]
        return GenerationParams(
            **{name: getattr(self, name) for name in names if hasattr(self, name)}
        )


class _CacheCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self.engine.cache.stats()
        gauges = {
            "kv_cache_bytes": ("bytes held by all caches", stats["bytes"]),
            "kv_cache_budget_bytes": ("global cache byte budget", stats["budget_bytes"]),
            "kv_cache_entries": ("session caches and prefix blocks", stats["entries"]),
            "kv_cache_sessions": ("live sessions", stats["sessions"]),
            "kv_cache_prefix_blocks": ("cached prefix blocks", stats["prefix_blocks"]),
            "kv_inflight_requests": ("generations running", self.engine.inflight),
        }
        for name, (help_text, value) in gauges.items():
            yield GaugeMetricFamily(name, help_text, value=value)
        counters = (
            "prefix_hits",
            "prefix_misses",
            "prefix_hit_tokens",
            "session_hits",
            "session_misses",
            "evictions",
            "expirations",
            "context_switches",
        )
        for name in counters:
            # Exposed as gauges of running totals: the collector reads them, it does not own them.
            yield GaugeMetricFamily(f"kv_cache_{name}_total", name.replace("_", " "), stats[name])


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra}, headers=headers)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings and unknown objects as ``str``: always valid JSON
    (a request may carry NaN, and the error must still be encodable)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Authentication and admission limits of the service (all off by default)."""

    api_keys: tuple[str, ...] = ()
    requests_per_minute: float = 0.0
    tokens_per_minute: float = 0.0
    max_queued: int = 256
    max_body_bytes: int = 1024 * 1024


def create_app(engine: Engine, limits: Limits | None = None) -> FastAPI:
    """The service around ``engine``, guarded by ``limits``."""
    limits = limits or Limits()
    app = FastAPI(
        title="kv-serve",
        description="Text generation with managed key/value caches: sessions, TTLs, "
        "context-switch invalidation, block-hashed prefix reuse and a byte budget.",
        version="0.1.0",
    )
    app.state.engine = engine
    limiter = RateLimiter(limits.requests_per_minute, limits.tokens_per_minute)
    gate = AdmissionGate(limits.max_queued)
    app.state.limiter = limiter
    app.state.gate = gate
    app.add_middleware(
        GuardMiddleware,
        api_keys=limits.api_keys,
        limiter=limiter,
        max_body_bytes=limits.max_body_bytes,
        worker_threads=limits.max_queued + 16,
    )
    registry = CollectorRegistry()
    requests_total = Counter(
        "kv_requests", "generation requests by outcome", ["outcome"], registry=registry
    )
    tokens_total = Counter("kv_generated_tokens", "tokens generated", registry=registry)
    processed_tokens_total = Counter(
        "kv_processed_tokens",
        "tokens run through the model (prompt and fed-back)",
        registry=registry,
    )
    reused_tokens_total = Counter(
        "kv_reused_tokens", "prompt tokens taken from a cache", registry=registry
    )
    latency = Histogram(
        "kv_request_seconds",
        "generation latency",
        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        registry=registry,
    )
    ttft = Histogram(
        "kv_time_to_first_token_seconds",
        "time to first token",
        buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        registry=registry,
    )
    registry.register(_CacheCollector(engine))
    metrics_lock = threading.Lock()

    def record(generation: Generation) -> None:
        result = generation.result
        if result is None:
            return
        with metrics_lock:
            requests_total.labels("ok").inc()
            tokens_total.inc(len(result.token_ids))
            processed_tokens_total.inc(result.processed_tokens)
            reused_tokens_total.inc(result.reused_tokens)
            latency.observe(result.total_s)
            ttft.observe(result.ttft_s)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        requests_total.labels("invalid").inc()
        # FastAPI parses a body as JSON only when it is labelled JSON; `curl -d` labels it a
        # form, and the resulting "valid dictionary" error would not say why.
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.method == "POST" and not (
            media_type == "application/json" or media_type.endswith("+json")
        ):
            return _error(
                415,
                "The request body must be JSON sent with 'Content-Type: application/json' "
                f"(this request has {repr(media_type) if media_type else 'no Content-Type'}); "
                "with curl, add -H 'Content-Type: application/json' or use --json.",
            )
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            message = str(error.get("msg", "invalid"))
            problems.append(f"{where}: {message}" if where else message)
        return _error(
            422, "Invalid request: " + "; ".join(problems), detail=json_safe(exc.errors())
        )

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        requests_total.labels("invalid").inc()
        return _error(exc.status_code, str(exc))

    @app.exception_handler(LimitExceeded)
    async def _limited(request: Request, exc: LimitExceeded) -> JSONResponse:
        requests_total.labels("limited").inc()
        return _error(exc.status_code, str(exc), exc.headers())

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"Not found: {request.method} {request.url.path} (see /docs)."
        elif exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        return _error(exc.status_code, message, dict(exc.headers or {}))

    def identity(request: Request) -> str:
        return str(getattr(request.state, "identity", None) or "anonymous")

    def start(
        request: Request,
        ids: list[int],
        params: GenerationParams,
        *,
        session_id: str | None = None,
        context_key: str | None = None,
        use_prefix_cache: bool = True,
    ) -> Generation:
        """Charge the caller's token bucket, take a queue slot (503 when full) and start."""
        limiter.charge_tokens(identity(request), len(ids) + params.max_new_tokens)
        gate.enter()
        try:
            generation = engine.start(
                ids,
                params,
                session_id=session_id,
                context_key=context_key,
                use_prefix_cache=use_prefix_cache,
            )
        except BaseException:
            gate.leave()
            raise
        generation.on_close(gate.leave)
        return generation

    @app.post("/v1/generate", response_model=GenerationResult)
    def generate(body: GenerateRequest, request: Request) -> Any:
        """Generate tokens; with ``stream`` the response is server-sent events:

        one ``data:`` line per token, then an ``event: done`` with the result.
        """
        ids = engine.encode(body.prompt) if body.prompt is not None else list(body.token_ids or [])
        if not ids:
            raise BadRequest("The prompt encodes to no tokens.", 422)
        params = body.params()
        generation = start(
            request,
            ids,
            params,
            session_id=body.session_id,
            context_key=body.context_key,
            use_prefix_cache=body.use_prefix_cache,
        )
        if not body.stream:
            try:
                with generation:
                    for _ in generation:
                        pass
            except Exception:
                requests_total.labels("error").inc()
                raise
            record(generation)
            assert generation.result is not None
            return generation.result.as_dict()

        def events() -> Iterator[str]:
            with generation:
                try:
                    for event in generation:
                        yield "data: " + json.dumps(
                            {"token_id": event.token_id, "text": event.text}
                        ) + "\n\n"
                except Exception as error:  # the status is sent already: report in-band
                    requests_total.labels("error").inc()
                    yield "event: error\ndata: " + json.dumps({"error": str(error)}) + "\n\n"
                    return
            record(generation)
            assert generation.result is not None
            yield "event: done\ndata: " + json.dumps(generation.result.as_dict()) + "\n\n"

        # close() is idempotent: it frees the session if the client left before streaming began.
        cleanup = BackgroundTasks()
        cleanup.add_task(generation.close)
        return StreamingResponse(events(), media_type="text/event-stream", background=cleanup)

    @app.get("/v1/sessions/{session_id}")
    def get_session(session_id: str) -> Any:
        """A session's history length, cached tokens, bytes and idle time."""
        info = engine.cache.session_info(session_id)
        if info is None:
            return _error(
                404, f"Unknown session {session_id!r} (never created, deleted or expired)."
            )
        return info

    @app.delete("/v1/sessions/{session_id}")
    def delete_session(session_id: str) -> Any:
        """Forget a session and free its cache."""
        if not engine.cache.delete_session(session_id):
            return _error(
                404, f"Unknown session {session_id!r} (never created, deleted or expired)."
            )
        return {"deleted": session_id}

    @app.get("/v1/cache/stats")
    def cache_stats() -> dict[str, Any]:
        """Entries, bytes, hits, misses, evictions and expirations of the caches."""
        stats = engine.cache.stats()
        stats["bytes_per_token"] = engine.kv_shape.bytes_per_token(
            engine.cache.storage_dtype or engine.dtype
        )
        return stats

    @app.delete("/v1/cache")
    def clear_cache() -> dict[str, Any]:
        """Drop every cache that no request is using (sessions keep their history)."""
        engine.cache.clear()
        return engine.cache.stats()

    started = time.time()

    add_openai_routes(app, engine, start, record)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": engine.model_name,
            "random_weights": engine.random_weights,
            "context_length": engine.context_length,
            "vocab_size": engine.vocab_size,
            "uptime_s": time.time() - started,
        }

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

    return app
