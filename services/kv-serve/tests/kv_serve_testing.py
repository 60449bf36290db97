"""Shared test helpers: a tiny model, engines around it, and a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from functools import lru_cache

import httpx
import torch
import uvicorn
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from kv_serve.app import Limits, create_app
from kv_serve.cache import CacheManager
from kv_serve.engine import Engine
from kv_serve.kv import KV
from lm import build_model, train_tokenizer

# One intra-op thread: on a shared 2-core machine more threads only spin against each other.
torch.set_num_threads(1)

TEXTS = tuple(
    f"Return the {word} of the {thing}. The {thing} is {word}, and {word} things follow."
    for word in ("sum", "product", "length", "first item", "last item", "maximum")
    for thing in ("list", "tuple", "mapping", "iterator", "file object")
)
PROMPT = "Return the sum of the list. The list is long, and the sum follows."


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@lru_cache(maxsize=1)
def tiny_model() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The ``tiny`` preset (seeded weights) with a BPE trained on :data:`TEXTS`."""
    tokenizer = train_tokenizer(TEXTS, 320)
    model = build_model("tiny", tokenizer=tokenizer, seed=0)
    model.train(False)
    return model, tokenizer


def make_engine(prefill_chunk: int = 64, **cache_kwargs: object) -> Engine:
    """An engine on the shared tiny model with its own cache manager."""
    model, tokenizer = tiny_model()
    options: dict[str, object] = {"budget_bytes": 64 * 1024 * 1024, "block_size": 4}
    options.update(cache_kwargs)
    cache = CacheManager(**options)  # type: ignore[arg-type]
    return Engine(
        model,
        tokenizer,
        cache,
        model_name="preset:tiny",
        max_new_tokens_limit=200,
        prefill_chunk=prefill_chunk,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(engine: Engine, limits: Limits | None = None) -> Iterator[httpx.Client]:
    """Serve ``engine`` with uvicorn on a free 127.0.0.1 port in a thread; yield a client."""
    port = free_port()
    config = uvicorn.Config(
        create_app(engine, limits), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def synthetic_kv(
    tokens: int, layers: int = 2, heads: int = 2, head_dim: int = 4, start: float = 0.0
) -> KV:
    """Keys/values whose entries encode the token position (for slicing checks)."""
    positions = torch.arange(tokens, dtype=torch.float32) + start
    base = positions.view(1, 1, tokens, 1).expand(1, heads, tokens, head_dim)
    return tuple((base.clone() + layer, -base.clone() - layer) for layer in range(layers))
