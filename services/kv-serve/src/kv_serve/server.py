"""``kv-serve``: load the model, build the cache manager and run uvicorn."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import uvicorn
from fastapi import FastAPI

from kv_serve.app import create_app
from kv_serve.cache import CacheManager
from kv_serve.config import Settings, load, parse_settings
from kv_serve.engine import Engine

logger = logging.getLogger("kv_serve")


def build_engine(settings: Settings) -> Engine:
    """The model, tokenizer and cache manager ``settings`` describe."""
    model, tokenizer, name = load(settings)
    cache = CacheManager(
        budget_bytes=settings.budget_bytes,
        block_size=settings.block_size,
        session_ttl_s=settings.session_ttl_s,
        prefix_ttl_s=settings.prefix_ttl_s,
        storage_dtype=torch.float16 if settings.fp16_storage else None,
        prefix_caching=settings.prefix_caching,
    )
    return Engine(
        model,
        tokenizer,
        cache,
        model_name=name,
        max_new_tokens_limit=settings.max_new_tokens_limit,
    )


def build_app(settings: Settings) -> FastAPI:
    return create_app(build_engine(settings))


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    logger.info("loading model %s", settings.model or "(default)")
    app = build_app(settings)
    logger.info(
        "serving %s on http://%s:%d", app.state.engine.model_name, settings.host, settings.port
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
