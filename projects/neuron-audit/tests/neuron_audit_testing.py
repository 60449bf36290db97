"""Shared helpers for the neuron-audit tests: hand-checkable models, a small corpus and
tokenizer."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from lm import train_tokenizer

WORDS = ("sum", "product", "length", "first item", "last item", "maximum", "minimum")
THINGS = ("list", "tuple", "mapping", "iterator", "file object", "string")
TEXTS = tuple(
    f"Return the {word} of the {thing}. The {thing} is {word}, and {word} things follow."
    for word in WORDS
    for thing in THINGS
)


@lru_cache(maxsize=1)
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on :data:`TEXTS` (cached: training is deterministic)."""
    return train_tokenizer(TEXTS, 320)


def write_corpus(directory: Path) -> Path:
    """A directory of small .txt documents, for ``--corpus``."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(TEXTS):
        (directory / f"doc{index:03d}.txt").write_text((text + "\n") * (1 + index % 4))
    return directory


def half_dead_mlp() -> nn.Sequential:
    """``Linear(4, 6) -> ReLU -> Linear(6, 2)`` whose hidden neurons are known for inputs in [0, 1).

    Neurons 0-2: bias -100, never fire. Neurons 3-4: weight 0, bias 1,
    always fire. Neuron 5: ``x0 - 0.5``, fires exactly when ``x0 > 0.501``.
    """
    first = nn.Linear(4, 6)
    with torch.no_grad():
        first.weight.zero_()
        first.bias.copy_(torch.tensor([-100.0, -100.0, -100.0, 1.0, 1.0, -0.5]))
        first.weight[5, 0] = 1.0
    return nn.Sequential(first, nn.ReLU(), nn.Linear(6, 2))


class TokenMLP(nn.Module):
    """Embedding -> ReLU on token ids, taking ``attention_mask`` like a transformer.

    Hidden neuron ``i`` fires exactly on token id ``i`` (one-hot embedding minus 0.5), so fire
    counts are token counts.
    """

    def __init__(self, vocab: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, vocab)
        with torch.no_grad():
            self.embed.weight.copy_(torch.eye(vocab) - 0.5)
        self.act = nn.ReLU()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        hidden: torch.Tensor = self.act(self.embed(input_ids))
        return hidden
