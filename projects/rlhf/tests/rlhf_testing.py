"""Shared helpers for the rlhf tests: the task tokenizer and tiny random models."""

from __future__ import annotations

from functools import lru_cache

import torch
from transformers import PreTrainedModel

from lm import build_model
from rlhf.models import Tokenizer, task_tokenizer

# Tiny models run several times faster on one thread than on two busy cores.
torch.set_num_threads(1)

PROMPTS = ["tell me about weather:", "what about music?", "talk food:", "tell me about games:"]


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    """The task tokenizer (training is deterministic, so it is cached)."""
    tok = task_tokenizer(0)
    tok.padding_side = "left"
    return tok


def tiny_model(preset: str = "tiny", seed: int = 0) -> PreTrainedModel:
    """A causal LM of ``preset`` with random weights and the task vocabulary."""
    return build_model(preset, tokenizer=tokenizer(), seed=seed)


def parameters_snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    """Names of parameters of ``module`` that differ from ``before``."""
    return {
        name for name, p in module.named_parameters() if not torch.equal(before[name], p.detach())
    }
