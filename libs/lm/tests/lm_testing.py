"""Shared helpers for the lm tests: a small fixed corpus and a tokenizer trained on it."""

from __future__ import annotations

from functools import lru_cache

from transformers import PreTrainedTokenizerFast

from lm import train_tokenizer

TEXTS = tuple(
    f"Return the {word} of the {thing}. The {thing} is {word}, and {word} things follow."
    for word in ("sum", "product", "length", "first item", "last item", "maximum")
    for thing in ("list", "tuple", "mapping", "iterator", "file object")
)
VOCAB_SIZE = 320


@lru_cache(maxsize=1)
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on :data:`TEXTS` (cached: training is deterministic)."""
    return train_tokenizer(TEXTS, VOCAB_SIZE)
