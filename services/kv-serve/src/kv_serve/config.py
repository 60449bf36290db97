"""Service settings (from the command line and ``KV_SERVE_*`` environment variables) and model
loading.

Every option has an environment variable ``KV_SERVE_<FIELD>`` (e.g. ``KV_SERVE_BUDGET_MB``); a
command-line flag overrides it. The command line itself is :func:`ml_core.cli.make_main` over
:class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import os
from functools import lru_cache
from typing import Literal

from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm import (
    DEFAULT_PRETRAINED_DIR,
    LoadedModel,
    load_corpus,
    load_model_spec,
    preset_names,
    train_tokenizer,
)
from ml_core.cli import option, require, require_non_negative, require_positive

ENV_PREFIX = "KV_SERVE_"
MiB = 1024 * 1024

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Text generation over HTTP with managed key/value caches."""

    model: str | None = option(
        None,
        help="a save_pretrained directory, a Hub id, or a preset name "
        f"({', '.join(preset_names())}); unset: {DEFAULT_PRETRAINED_DIR} if it holds a "
        "saved model, else the 'tiny' preset",
    )
    host: str = "127.0.0.1"
    """Interface to bind (the container image passes 0.0.0.0)."""

    port: int = 8000
    """TCP port (0: any free port)."""

    budget_mb: float = 256.0
    """Global byte budget of all caches, in MiB."""

    session_ttl_s: float = 600.0
    """Idle seconds before a session expires (0: never)."""

    prefix_ttl_s: float = 600.0
    """Unused seconds before a prefix block expires (0: never)."""

    block_size: int = 16
    """Tokens per prefix-cache block."""

    fp16_storage: bool = False
    """Store cached keys/values in float16 (half the bytes)."""

    prefix_caching: bool = True
    """Reuse cached prefix blocks across requests."""

    max_new_tokens_limit: int = 1024
    """Largest max_new_tokens a request may ask for."""

    tokenizer_max_chars: int = 400_000
    """Stdlib corpus characters to train a preset's tokenizer on."""

    seed: int = 0
    """Seed of a preset's random weights."""

    log_level: LogLevel = "info"
    """Uvicorn and service log level."""

    api_key: tuple[str, ...] = option(
        (),
        help="accepted API keys (several allowed; the variable takes them space-separated); "
        "none: no authentication. Clients send 'Authorization: Bearer <key>'",
        secret=True,
    )
    rate_limit_rpm: float = 0.0
    """Requests per minute per API key (per client address without keys); 0: no limit."""

    rate_limit_tpm: float = 0.0
    """Tokens (prompt + max new tokens) per minute per API key; 0: no limit."""

    max_queued: int = 256
    """Generation requests admitted at once (running or waiting); more get 503."""

    max_body_kb: int = 1024
    """Largest request body, in KiB (413 above)."""

    torch_threads: int = 0
    """Torch intra-op threads of the forward passes (0: one fewer than the cores, at least 1)."""

    max_batch: int = 64
    """Sequences decoded together in one forward pass (continuous batching)."""

    prefill_chunk: int = 256
    """Prompt tokens run per decode step while others are decoding (chunked prefill; 0: whole
    prompts at once, which stalls every stream for the length of a newcomer's prompt)."""

    def __post_init__(self) -> None:
        require(0 <= self.port <= 65535, "port", f"must be in [0, 65535], got {self.port}")
        require_positive(
            self,
            "budget_mb",
            "block_size",
            "max_new_tokens_limit",
            "tokenizer_max_chars",
            "max_queued",
            "max_body_kb",
            "max_batch",
        )
        require_non_negative(
            self,
            "session_ttl_s",
            "prefix_ttl_s",
            "rate_limit_rpm",
            "rate_limit_tpm",
            "torch_threads",
            "prefill_chunk",
        )
        for key in self.api_key:
            require(
                len(key) >= 8 and key.isprintable() and " " not in key,
                "api_key",
                "each key must be at least 8 printable characters without spaces",
            )

    @property
    def budget_bytes(self) -> int:
        return int(self.budget_mb * MiB)


def default_torch_threads() -> int:
    """One fewer intra-op threads than cores (at least 1): the scheduler thread runs every forward
    pass, and the remaining core serves HTTP, tokenization and sampling.

    On a loaded 2-core machine 2 intra-op threads made decoding 30x slower than 1 (spinning OpenMP
    workers), so 1 it is there.
    """
    return max(1, (os.cpu_count() or 1) - 1)


@lru_cache(maxsize=4)
def preset_tokenizer(max_chars: int = 400_000, vocab_size: int = 4096) -> PreTrainedTokenizerBase:
    """A byte-level BPE trained on the embedded stdlib corpus (cached in memory)."""
    corpus = load_corpus(max_chars=max_chars)
    return train_tokenizer(corpus.train, vocab_size)


def load(settings: Settings) -> LoadedModel:
    """The model and tokenizer ``settings`` name (a saved directory if present, else a preset, else
    a Hub id), and where they came from.

    Raises :class:`lm.ModelLoadError` when nothing loads.
    """
    return load_model_spec(
        settings.model,
        preset_tokenizer=lambda: preset_tokenizer(settings.tokenizer_max_chars),
        seed=settings.seed,
    )
