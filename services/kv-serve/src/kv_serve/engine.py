"""Token generation with managed caches: sessions, prefix reuse, sampling, streaming.

A request's tokens are the session's history (if any) followed by its prompt. The engine reuses the
longest cached start of them (the session's cache, or the prefix blocks), runs only the rest through
the model, then samples new tokens one at a time on a private ``DynamicCache``. Afterwards the
session's cache and the full prefix blocks are stored (copies) for the next request.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from kv_serve.cache import CacheManager
from kv_serve.kv import KV, KVShape, kv_length
from kv_serve.scheduler import BatchSequence, Finished, Scheduler


class BadRequest(ValueError):
    """The request cannot be served as asked (a 4xx, not a server error)."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclasses.dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = 32
    temperature: float = 0.0  # 0 = greedy
    top_k: int = 0  # 0 = off
    top_p: float = 1.0
    seed: int | None = None
    stop_at_eos: bool = True
    logprobs: int | None = None  # None: none; n >= 0: the chosen token's and the n most likely


@dataclasses.dataclass(frozen=True)
class TokenLogprob:
    """A token's log-probability given what precedes it, and the most likely alternatives."""

    token_id: int
    logprob: float
    top: dict[int, float]


def token_logprobs(logits: torch.Tensor, token_id: int, top_n: int) -> TokenLogprob:
    """``token_id``'s log-probability under 1-D ``logits`` and the ``top_n`` most likely tokens."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    top: dict[int, float] = {}
    if top_n > 0:
        values, indices = torch.topk(logp, min(top_n, logp.numel()))
        top = {int(i): float(v) for i, v in zip(indices.tolist(), values.tolist())}
    return TokenLogprob(token_id, float(logp[token_id]), top)


@dataclasses.dataclass
class GenerationResult:
    """One generation's outcome: what Python callers get, and the one schema of the ``/v1/generate``
    response and its streamed ``done`` event (FastAPI serves this dataclass)."""

    token_ids: list[int]
    text: str
    prompt_tokens: int
    reused_tokens: int
    processed_tokens: int
    finish_reason: str
    session_id: str | None
    session_hit: bool
    prefix_hit_tokens: int
    context_switched: bool
    ttft_s: float
    total_s: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class TokenEvent:
    token_id: int
    text: str
    logprob: TokenLogprob | None = None


def sample_next(
    logits: torch.Tensor, params: GenerationParams, generator: torch.Generator | None
) -> int:
    """Pick the next token from 1-D ``logits``: greedy at temperature 0, else top-k/top-p
    sampling."""
    if params.temperature <= 0:
        return int(torch.argmax(logits).item())
    scores = logits.float() / params.temperature
    if params.top_k > 0:
        kth = torch.topk(scores, min(params.top_k, scores.numel())).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=True)
        cumulative = torch.softmax(sorted_scores, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(sorted_scores, dim=-1) >= params.top_p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator).item())


class Engine:
    """A model, its tokenizer and a :class:`CacheManager`, safe to call from many threads."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        cache: CacheManager,
        *,
        model_name: str = "model",
        max_new_tokens_limit: int = 1024,
        random_weights: bool | None = None,
        max_batch: int = 64,
        prefill_chunk: int = 256,
    ) -> None:
        model.train(False)
        self.model = model
        self.tokenizer = tokenizer
        self.cache = cache
        self.model_name = model_name
        # A preset has random weights: its text is noise (say so at start and in /healthz).
        self.random_weights = (
            model_name.startswith("preset:") if random_weights is None else random_weights
        )
        self.max_new_tokens_limit = max_new_tokens_limit
        self.kv_shape = KVShape.from_config(model.config)
        self.dtype = next(model.parameters()).dtype
        self.vocab_size = int(model.config.vocab_size)
        positions = getattr(model.config, "n_positions", None) or getattr(
            model.config, "max_position_embeddings", None
        )
        self.context_length = int(positions or 1024)
        eos = tokenizer.eos_token_id
        self.eos_token_id = eos if isinstance(eos, int) else None
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        # Every forward pass runs on the scheduler's thread (continuous batching).
        self.scheduler = Scheduler(model, max_batch=max_batch, prefill_chunk=prefill_chunk)

    @property
    def inflight(self) -> int:
        return self._inflight

    # ------------------------------------------------------------------ input checks

    def encode(self, prompt: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(prompt, add_special_tokens=False)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        text = self.tokenizer.decode(list(ids), skip_special_tokens=True)
        return text if isinstance(text, str) else "".join(text)

    def check_tokens(self, ids: Sequence[int]) -> None:
        if not ids:
            raise BadRequest("The prompt is empty: send a non-empty prompt or token_ids.", 422)
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise BadRequest(f"token_ids must be in [0, {self.vocab_size}); got {bad[:5]}.", 422)

    def _check_length(self, total_prompt: int, params: GenerationParams, history: int) -> None:
        if params.max_new_tokens < 1 or params.max_new_tokens > self.max_new_tokens_limit:
            raise BadRequest(
                f"max_new_tokens must be between 1 and {self.max_new_tokens_limit}, "
                f"got {params.max_new_tokens}.",
                422,
            )
        if total_prompt + params.max_new_tokens > self.context_length:
            where = (
                f" ({history} tokens of session history + {total_prompt - history} new)"
                if history
                else ""
            )
            raise BadRequest(
                f"The prompt is {total_prompt} tokens{where} and max_new_tokens is "
                f"{params.max_new_tokens}: together they exceed the model context of "
                f"{self.context_length} tokens. Shorten the prompt, lower max_new_tokens"
                + (", or delete the session." if history else "."),
                413 if total_prompt >= self.context_length else 400,
            )

    # ------------------------------------------------------------------ scoring

    def score(self, ids: Sequence[int], top_n: int = 0) -> list[TokenLogprob]:
        """Log-probabilities of ``ids[1:]``, each given the tokens before it (one forward pass over
        the whole sequence; what ``echo=True`` with ``logprobs`` returns for a prompt)."""
        self.check_tokens(ids)
        if len(ids) > self.context_length:
            raise BadRequest(
                f"The prompt is {len(ids)} tokens: more than the model context of "
                f"{self.context_length} tokens.",
                413,
            )
        if len(ids) < 2:
            return []
        inputs = torch.tensor([list(ids)])

        def forward() -> torch.Tensor:
            with torch.inference_mode():
                out = self.model(
                    input_ids=inputs, attention_mask=torch.ones_like(inputs), use_cache=False
                )
            logits: torch.Tensor = out.logits[0]
            return logits

        logits = self.scheduler.call(forward)
        return [token_logprobs(logits[i - 1], ids[i], top_n) for i in range(1, len(ids))]

    # ------------------------------------------------------------------ generation

    def start(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        *,
        session_id: str | None = None,
        context_key: str | None = None,
        use_prefix_cache: bool = True,
    ) -> Generation:
        """Validate and set up a generation; iterate it for tokens, then read ``.result``.

        With a session this blocks until earlier requests on the session are done, and holds the
        session until the generation is finished or closed. Raises :class:`BadRequest` before
        anything runs.
        """
        self.check_tokens(prompt_ids)
        if params.max_new_tokens < 1 or params.max_new_tokens > self.max_new_tokens_limit:
            self._check_length(len(prompt_ids), params, 0)
        lock = self.cache.session_lock(session_id) if session_id is not None else None
        if lock is not None:
            lock.acquire()
        try:
            history: list[int] = []
            session_kv: KV | None = None
            switched = False
            if session_id is not None:
                checkout = self.cache.checkout_session(session_id, context_key, self.dtype)
                history, session_kv, switched = (
                    checkout.tokens,
                    checkout.kv,
                    checkout.context_switched,
                )
            tokens = history + list(prompt_ids)
            try:
                self._check_length(len(tokens), params, len(history))
            except BadRequest:
                if session_id is not None:
                    self.cache.release_session(session_id)
                raise
            return Generation(
                self,
                tokens,
                params,
                prompt_tokens=len(prompt_ids),
                session_id=session_id,
                session_kv=session_kv,
                context_switched=switched,
                use_prefix_cache=use_prefix_cache,
                lock=lock,
            )
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def generate(
        self,
        prompt_ids: Sequence[int],
        params: GenerationParams,
        *,
        session_id: str | None = None,
        context_key: str | None = None,
        use_prefix_cache: bool = True,
    ) -> GenerationResult:
        """Run a whole generation and return its result."""
        generation = self.start(
            prompt_ids,
            params,
            session_id=session_id,
            context_key=context_key,
            use_prefix_cache=use_prefix_cache,
        )
        with generation:
            for _ in generation:
                pass
        assert generation.result is not None
        return generation.result


class Generation:
    """One running request: an iterator of :class:`TokenEvent`; ``result`` when done."""

    def __init__(
        self,
        engine: Engine,
        tokens: list[int],
        params: GenerationParams,
        *,
        prompt_tokens: int,
        session_id: str | None,
        session_kv: KV | None,
        context_switched: bool,
        use_prefix_cache: bool,
        lock: threading.Lock | None,
    ) -> None:
        self.engine = engine
        self.tokens = tokens
        self.params = params
        self.prompt_tokens = prompt_tokens
        self.session_id = session_id
        self.session_kv = session_kv
        self.context_switched = context_switched
        self.use_prefix_cache = use_prefix_cache
        self._lock = lock
        self._closed = False
        self._checked_in = False
        self._on_close: list[Callable[[], None]] = []
        self.result: GenerationResult | None = None
        self._iterator: Generator[TokenEvent, None, None] = self._run()

    def __iter__(self) -> Iterator[TokenEvent]:
        return self._iterator

    def __next__(self) -> TokenEvent:
        return next(self._iterator)

    def __enter__(self) -> Generation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the generation is closed."""
        self._on_close.append(callback)

    def close(self) -> None:
        """Stop (if still running) and release the session."""
        if self._closed:
            return
        self._closed = True
        try:
            self._iterator.close()
            if self.session_id is not None and not self._checked_in:
                self.engine.cache.release_session(self.session_id)
        finally:
            if self._lock is not None:
                self._lock.release()
            for callback in self._on_close:
                callback()

    def _run(self) -> Generator[TokenEvent, None, None]:
        engine, cache, params = self.engine, self.engine.cache, self.params
        started = time.perf_counter()
        tokens = self.tokens
        # At least the last prompt token must run, to get the logits of the next one.
        reusable = len(tokens) - 1
        reused_kv: KV | None = None
        reused = 0
        session_hit = False
        if self.session_kv is not None:
            reused = min(kv_length(self.session_kv), reusable)
            reused_kv = self.session_kv
            session_hit = reused > 0
        prefix_tokens = 0
        if self.use_prefix_cache:
            match = cache.match_prefix(tokens, engine.dtype, max_tokens=reusable)
            prefix_tokens = match.tokens
            if match.kv is not None and match.tokens > reused:
                reused, reused_kv, session_hit = match.tokens, match.kv, False
        if reused_kv is not None and reused > 0:
            # Both sources hand out private copies already: no second clone on this hot path.
            if kv_length(reused_kv) > reused:
                reused_kv = tuple((k[:, :, :reused], v[:, :, :reused]) for k, v in reused_kv)
        else:
            reused, reused_kv = 0, None
        generator = None
        if params.temperature > 0:
            generator = torch.Generator()
            generator.manual_seed(
                params.seed if params.seed is not None else torch.seed() % (2**63)
            )
        sequence = BatchSequence(
            feed=tokens[reused:],
            kv=reused_kv,
            max_new_tokens=params.max_new_tokens,
            sample=lambda logits: sample_next(logits, params, generator),
            eos_token_id=engine.eos_token_id if params.stop_at_eos else None,
            greedy=params.temperature <= 0,
        )
        with engine._inflight_lock:
            engine._inflight += 1
        new_ids: list[int] = []
        ttft = 0.0
        finished: Finished | None = None
        try:
            engine.scheduler.submit(sequence)
            while True:
                item = sequence.out.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Finished):
                    finished = item
                    break
                if not new_ids:
                    ttft = time.perf_counter() - started
                new_ids.append(item.token_id)
                scored = (
                    token_logprobs(item.logits, item.token_id, params.logprobs)
                    if params.logprobs is not None
                    else None
                )
                yield TokenEvent(item.token_id, engine.decode([item.token_id]), scored)
        finally:
            sequence.cancelled = True  # a no-op once finished; else the scheduler drops it
            with engine._inflight_lock:
                engine._inflight -= 1
        if not new_ids:
            ttft = time.perf_counter() - started
        assert finished is not None
        finish, processed, kv = finished.reason, finished.processed, finished.kv
        # The cache covers every token fed: the prompt and all generated tokens but the last.
        all_tokens = tokens + new_ids
        if kv is not None and self.use_prefix_cache:
            cache.insert_prefix(all_tokens, kv)
        if self.session_id is not None:
            cache.checkin_session(self.session_id, all_tokens, kv)
            self._checked_in = True
        self.result = GenerationResult(
            token_ids=new_ids,
            text=engine.decode(new_ids),
            prompt_tokens=self.prompt_tokens,
            reused_tokens=reused,
            processed_tokens=processed,
            finish_reason=finish,
            session_id=self.session_id,
            session_hit=session_hit,
            prefix_hit_tokens=prefix_tokens,
            context_switched=self.context_switched,
            ttft_s=ttft,
            total_s=time.perf_counter() - started,
        )


def generate_tokens(
    model: PreTrainedModel, prompt_ids: Sequence[int], max_new_tokens: int, *, use_cache: bool
) -> list[int]:
    """Greedy generation with or without a KV cache (the article's comparison)."""
    ids = list(prompt_ids)
    new: list[int] = []
    dyn = None
    with torch.inference_mode():
        feed = ids
        for _ in range(max_new_tokens):
            if use_cache:
                if dyn is None:
                    dyn = DynamicCache()
                out = model(
                    input_ids=torch.tensor([feed]), cache=dyn, use_cache=True, logits_to_keep=1
                )
            else:
                out = model(input_ids=torch.tensor([ids + new]), use_cache=False, logits_to_keep=1)
            next_id = int(torch.argmax(out.logits[0, -1]).item())
            new.append(next_id)
            feed = [next_id]
    return new
