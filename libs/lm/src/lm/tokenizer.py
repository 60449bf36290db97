"""Train a byte-level BPE tokenizer and wrap it for transformers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 4096,
    *,
    min_frequency: int = 2,
    model_max_length: int | None = None,
) -> PreTrainedTokenizerFast:
    """Train a GPT-2 style byte-level BPE on ``texts``.

    Every byte is in the initial alphabet, so any text encodes and decodes back unchanged. The
    result has ``<|endoftext|>`` as its bos/eos token and ``<|pad|>`` as its pad token. Training is
    deterministic for the same texts in the same order. The vocabulary can end up smaller than
    ``vocab_size`` when the texts have too few distinct pairs to merge.
    """
    minimum = len(pre_tokenizers.ByteLevel.alphabet()) + len(SPECIAL_TOKENS)
    if vocab_size < minimum:
        raise ValueError(
            f"vocab_size must be at least {minimum} (256 bytes plus special tokens), "
            f"got {vocab_size}."
        )
    documents = [text for text in texts if text]
    if not documents:
        raise ValueError("Cannot train a tokenizer on empty texts.")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer=trainer)
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    # transformers leaves this constructor unannotated; the cast states what it returns.
    factory = cast(Callable[..., PreTrainedTokenizerFast], PreTrainedTokenizerFast)
    return factory(
        tokenizer_object=tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        # Keep " ." and " 's" as they are, or decode(encode(text)) would not round-trip.
        clean_up_tokenization_spaces=False,
        **extra,
    )
