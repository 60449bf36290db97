"""Service settings from environment variables and the command line, and model
loading.

Every option has an environment variable (``KV_SERVE_<NAME>``); a
command-line flag overrides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm import build_model, load_corpus, load_model, load_tokenizer, preset_names, train_tokenizer

ENV_PREFIX = "KV_SERVE_"
# Where `./pants run libs/lm:pretrain -- --out runs/lm-tiny` writes; used when it exists.
DEFAULT_PRETRAINED_DIR = Path("runs/lm-tiny")
DEFAULT_PRESET = "tiny"
MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Settings:
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    budget_mb: float = 256.0
    session_ttl_s: float = 600.0
    prefix_ttl_s: float = 600.0
    block_size: int = 16
    fp16_storage: bool = False
    prefix_caching: bool = True
    max_new_tokens_limit: int = 1024
    tokenizer_max_chars: int = 400_000
    seed: int = 0
    log_level: str = "info"

    @property
    def budget_bytes(self) -> int:
        return int(self.budget_mb * MiB)


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (1/0, true/false), got {text!r}")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The CLI; defaults come from ``KV_SERVE_*`` variables in ``env``."""
    env = os.environ if env is None else env
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="kv-serve",
        description="Text generation over HTTP with managed key/value caches.",
    )

    def option(name: str, kind: type | object, help_text: str) -> None:
        field = name.replace("-", "_")
        env_name = ENV_PREFIX + field.upper()
        default = getattr(defaults, field)
        if env_name in env:
            default = kind(env[env_name])  # type: ignore[operator]
        parser.add_argument(
            "--" + name,
            type=kind,  # type: ignore[arg-type]
            default=default,
            help=f"{help_text} (env {env_name}; default: %(default)s)",
        )

    option(
        "model",
        str,
        "a save_pretrained directory, a Hub id, or a preset name "
        f"({', '.join(preset_names())}); unset: {DEFAULT_PRETRAINED_DIR} if it exists, "
        f"else the {DEFAULT_PRESET!r} preset",
    )
    option("host", str, "interface to bind")
    option("port", int, "TCP port")
    option("budget-mb", float, "global byte budget of all caches, in MiB")
    option("session-ttl-s", float, "idle seconds before a session expires (0: never)")
    option("prefix-ttl-s", float, "unused seconds before a prefix block expires (0: never)")
    option("block-size", _positive_int, "tokens per prefix-cache block")
    option("fp16-storage", _bool, "store cached keys/values in float16")
    option("prefix-caching", _bool, "reuse cached prefix blocks across requests")
    option("max-new-tokens-limit", _positive_int, "largest max_new_tokens a request may ask")
    option("tokenizer-max-chars", _positive_int, "corpus characters to train a preset's tokenizer")
    option("seed", int, "seed of a preset's random weights")
    option("log-level", str, "uvicorn log level")
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    args = build_parser(env).parse_args(argv)
    return Settings(**vars(args))


@lru_cache(maxsize=4)
def preset_tokenizer(max_chars: int = 400_000, vocab_size: int = 4096) -> PreTrainedTokenizerBase:
    """A byte-level BPE trained on the embedded stdlib corpus (cached in
    memory)."""
    corpus = load_corpus(max_chars=max_chars)
    return train_tokenizer(corpus.train, vocab_size)


def load(settings: Settings) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    """The model and tokenizer ``settings`` name, and a display name."""
    name = settings.model
    if name is None and DEFAULT_PRETRAINED_DIR.is_dir():
        name = str(DEFAULT_PRETRAINED_DIR)
    if name is None or name in preset_names():
        preset = name or DEFAULT_PRESET
        tokenizer = preset_tokenizer(settings.tokenizer_max_chars)
        model = build_model(preset, tokenizer=tokenizer, seed=settings.seed)
        model.train(False)
        return model, tokenizer, f"preset:{preset}"
    model = load_model(name)
    model.train(False)
    return model, load_tokenizer(name), name
