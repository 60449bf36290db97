"""Models and padded token batches for an audit, from the language-model lib."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import torch
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm import LoadedModel, load_corpus, load_model_spec, train_tokenizer
from lm.corpus import Corpus

#: Vocabulary of the BPE trained on the corpus when ``--model`` names a preset.
PRESET_VOCAB_SIZE = 4096


def load_audit_model(
    spec: str | os.PathLike[str] | None,
    corpus: Corpus,
    *,
    vocab_size: int = PRESET_VOCAB_SIZE,
    seed: int = 0,
) -> LoadedModel:
    """What ``--model`` names (see ``lm.load_model_spec``: a saved directory, else a preset, else a
    Hub id); a preset gets a BPE tokenizer trained on ``corpus``."""
    return load_model_spec(
        spec, preset_tokenizer=lambda: train_tokenizer(corpus.train, vocab_size), seed=seed
    )


def read_corpus(source: str | os.PathLike[str] | None, max_chars: int | None) -> Corpus:
    return load_corpus(source, max_chars=max_chars)


def padded_batches(
    documents: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    *,
    batch_size: int,
    max_length: int,
    max_tokens: int | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Documents tokenized one per row, truncated to ``max_length`` and padded per batch.

    Stops once ``max_tokens`` real (unpadded) tokens have been yielded. Yields ``input_ids`` and
    ``attention_mask``.
    """
    if batch_size < 1 or max_length < 1:
        raise ValueError("batch_size and max_length must be positive.")
    if tokenizer.pad_token_id is None:
        raise ValueError("The tokenizer has no pad token.")
    seen = 0
    for start in range(0, len(documents), batch_size):
        encoded = tokenizer(
            list(documents[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        batch = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        if max_tokens is not None and seen + int(batch["attention_mask"].sum()) > max_tokens:
            batch = _trim(batch, max_tokens - seen)
        real = int(batch["attention_mask"].sum())
        if real == 0:
            return
        seen += real
        yield batch
        if max_tokens is not None and seen >= max_tokens:
            return


def _trim(batch: dict[str, torch.Tensor], budget: int) -> dict[str, torch.Tensor]:
    """Mask tokens beyond ``budget`` real ones (row-major order) as padding."""
    mask = batch["attention_mask"]
    keep = (mask.flatten().cumsum(0) <= budget).view_as(mask) & mask.bool()
    return {"input_ids": batch["input_ids"], "attention_mask": keep.to(mask.dtype)}


def count_tokens(batches: Sequence[dict[str, torch.Tensor]]) -> int:
    return sum(int(b["attention_mask"].sum()) for b in batches)
