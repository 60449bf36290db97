"""Text generation with a libs/lm language model: a saved directory, a preset (random weights) or a
Hub id."""

from __future__ import annotations

import torch
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm import LoadedModel, load_corpus, load_model_spec, train_tokenizer


def small_tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level BPE trained in seconds on the embedded stdlib corpus."""
    return train_tokenizer(load_corpus(max_chars=20_000).train, vocab_size=512)


def load(model: str | None, seed: int) -> LoadedModel:
    """What ``--model`` names (see ``lm.load_model_spec``)."""
    return load_model_spec(model, preset_tokenizer=small_tokenizer, seed=seed)


def complete(loaded: LoadedModel, prompt: str, max_new_tokens: int) -> str:
    """``prompt`` continued greedily by ``max_new_tokens`` tokens."""
    config = loaded.model.config
    context = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings")
    ids = loaded.tokenizer(prompt, return_tensors="pt")["input_ids"]
    # Keep the newest tokens when the prompt and the completion exceed the model's context.
    ids = ids[:, -max(1, int(context) - max_new_tokens) :]
    new_tokens: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            next_id = int(loaded.model(input_ids=ids).logits[0, -1].argmax())
            new_tokens.append(next_id)
            ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    text = loaded.tokenizer.decode(new_tokens)
    assert isinstance(text, str)
    return text
