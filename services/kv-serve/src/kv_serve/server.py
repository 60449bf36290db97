"""``kv-serve``: load the model, build the cache manager and run uvicorn.

From Python: ``run(Settings(model="tiny", port=8000))``.
"""

from __future__ import annotations

import logging

import torch
import uvicorn
from fastapi import FastAPI

from kv_serve.app import Limits, create_app
from kv_serve.cache import CacheManager
from kv_serve.config import ENV_PREFIX, Settings, default_torch_threads, load
from kv_serve.engine import Engine
from lm import ModelLoadError
from ml_core.cli import Command, make_main

logger = logging.getLogger("kv_serve")


def build_engine(settings: Settings) -> Engine:
    """The model, tokenizer and cache manager ``settings`` describe."""
    loaded = load(settings)
    cache = CacheManager(
        budget_bytes=settings.budget_bytes,
        block_size=settings.block_size,
        session_ttl_s=settings.session_ttl_s,
        prefix_ttl_s=settings.prefix_ttl_s,
        storage_dtype=torch.float16 if settings.fp16_storage else None,
        prefix_caching=settings.prefix_caching,
    )
    return Engine(
        loaded.model,
        loaded.tokenizer,
        cache,
        model_name=loaded.source,
        max_new_tokens_limit=settings.max_new_tokens_limit,
        max_batch=settings.max_batch,
        prefill_chunk=settings.prefill_chunk,
    )


def build_app(settings: Settings) -> FastAPI:
    limits = Limits(
        api_keys=settings.api_key,
        requests_per_minute=settings.rate_limit_rpm,
        tokens_per_minute=settings.rate_limit_tpm,
        max_queued=settings.max_queued,
        max_body_bytes=settings.max_body_kb * 1024,
    )
    return create_app(build_engine(settings), limits)


def run(settings: Settings) -> None:
    """Load the model and serve until interrupted (raises :class:`lm.ModelLoadError` when the model
    does not load)."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    # The scheduler thread runs every forward pass; see default_torch_threads.
    torch.set_num_threads(settings.torch_threads or default_torch_threads())
    logger.info("loading model %s", settings.model or "(default)")
    app = build_app(settings)
    engine = app.state.engine
    if engine.random_weights:
        logger.warning(
            "%s has RANDOM weights: its text is noise (use --model DIR for a trained model)",
            engine.model_name,
        )
    if settings.api_key:
        logger.info("API keys: %d configured (Bearer auth on)", len(settings.api_key))
    logger.info("serving %s on http://%s:%d", engine.model_name, settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)


main = make_main(
    Command(Settings, run),
    prog="kv-serve",
    env_prefix=ENV_PREFIX,
    user_errors=(ModelLoadError,),
)


if __name__ == "__main__":
    raise SystemExit(main(None))
