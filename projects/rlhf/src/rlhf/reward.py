"""Reward model, trained with the Bradley-Terry loss: a sequence classifier on the shared policy
model (``shared``), or a separate small BERT encoder with its own tokenizer (``bert``)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from ml_core import seed_everything, write_json_atomic
from ml_core.cli import config_to_dict, require, require_positive
from rlhf.data import PreferencePair, load_preferences
from rlhf.jsonlog import JsonLinesLog
from rlhf.losses import bradley_terry_loss
from rlhf.models import (
    Tokenizer,
    bert_tokenizer,
    build_bert_reward_model,
    load_policy,
    load_reward_model,
    reward_scores,
    save_model_dir,
    set_eval,
    use_torch_threads,
)
from rlhf.plots import save_curves


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """A one-output sequence classifier trained with the Bradley-Terry loss: on the policy's weights
    (shared) or a separate BERT encoder trained from scratch (bert)."""

    out: Path = Path("runs/rlhf/reward_model")
    """Directory for the reward model, metrics.json and reward_curves.png."""

    policy: Path = Path("runs/rlhf/base_policy")
    """The model (and tokenizer) the shared-trunk reward model starts from."""

    reward_model: Literal["shared", "bert"] = "shared"
    """Shared: a new score head on the policy's trunk and tokenizer; bert: a separate small BERT
    encoder (random initial weights) with its own byte-level BPE trained on the training texts."""

    train_data: Path = Path("runs/rlhf/data/train.jsonl")
    """Preference pairs to train on (.jsonl, .csv or a datasets directory)."""

    test_data: Path = Path("runs/rlhf/data/test.jsonl")
    """Held-out preference pairs for the accuracy."""

    steps: int = 1200
    """Optimiser steps."""

    batch_size: int = 64
    """Pairs per step."""

    learning_rate: float = 3e-3
    """AdamW learning rate."""

    seed: int = 0
    """Seeds batch sampling (and the BERT model's initial weights)."""

    bert_hidden_size: int = 64
    """BERT reward model: hidden size."""

    bert_layers: int = 2
    """BERT reward model: encoder layers."""

    bert_heads: int = 4
    """BERT reward model: attention heads (must divide the hidden size)."""

    bert_vocab_size: int = 1000
    """BERT reward model: tokenizer vocabulary, at most (byte-level BPE, 256 bytes minimum)."""

    def __post_init__(self) -> None:
        require_positive(
            self,
            "steps",
            "batch_size",
            "learning_rate",
            "bert_hidden_size",
            "bert_layers",
            "bert_heads",
            "bert_vocab_size",
        )
        require(
            self.bert_hidden_size % self.bert_heads == 0,
            "bert_heads",
            f"must divide --bert-hidden-size {self.bert_hidden_size}, got {self.bert_heads}",
        )


def pair_rewards(
    model: PreTrainedModel, tokenizer: Tokenizer, pairs: Sequence[PreferencePair]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r_chosen, r_rejected)`` for a batch of pairs, in one forward pass."""
    prompts = [p.prompt for p in pairs] * 2
    completions = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    rewards = reward_scores(model, tokenizer, prompts, completions)
    return rewards[: len(pairs)], rewards[len(pairs) :]


def reward_step(
    model: PreTrainedModel,
    tokenizer: Tokenizer,
    optimizer: torch.optim.Optimizer,
    pairs: Sequence[PreferencePair],
) -> dict[str, float]:
    """One Bradley-Terry optimisation step; returns loss, accuracy and margin."""
    model.train()
    chosen, rejected = pair_rewards(model, tokenizer, pairs)
    loss = bradley_terry_loss(chosen, rejected)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    margin = (chosen - rejected).detach()
    return {
        "loss": float(loss.detach()),
        "accuracy": float((margin > 0).float().mean()),
        "margin": float(margin.mean()),
    }


@torch.no_grad()
def evaluate_reward_model(
    model: PreTrainedModel,
    tokenizer: Tokenizer,
    pairs: Sequence[PreferencePair],
    batch_size: int = 256,
) -> dict[str, float]:
    """Held-out pairwise accuracy (chosen scored higher), mean margin and loss."""
    set_eval(model)
    margins = []
    for start in range(0, len(pairs), batch_size):
        chosen, rejected = pair_rewards(model, tokenizer, pairs[start : start + batch_size])
        margins.append(chosen - rejected)
    margin = torch.cat(margins)
    return {
        "accuracy": float((margin > 0).float().mean()),
        "margin": float(margin.mean()),
        "loss": float(bradley_terry_loss(margin, torch.zeros_like(margin))),
        "pairs": len(pairs),
    }


def build_reward_model(
    config: RewardConfig, train: Sequence[PreferencePair]
) -> tuple[PreTrainedModel, Tokenizer]:
    """The untrained reward model of ``config.reward_model`` and the tokenizer it reads."""
    if config.reward_model == "bert":
        texts = [text for p in train for text in (p.prompt, p.chosen, p.rejected)]
        tokenizer: Tokenizer = bert_tokenizer(texts, config.bert_vocab_size)
        model = build_bert_reward_model(
            tokenizer,
            hidden_size=config.bert_hidden_size,
            layers=config.bert_layers,
            heads=config.bert_heads,
            seed=config.seed,
        )
        return model, tokenizer
    _, tokenizer = load_policy(config.policy)
    return load_reward_model(config.policy), tokenizer


def train_reward_model(config: RewardConfig) -> dict[str, Any]:
    """Train, evaluate and save the reward model; logs ``reward_log.jsonl`` per step."""
    use_torch_threads()
    seed_everything(config.seed)
    train, test = load_preferences(config.train_data), load_preferences(config.test_data)
    model, tokenizer = build_reward_model(config, train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    rng = random.Random(config.seed)
    before = evaluate_reward_model(model, tokenizer, test)
    out = config.out
    with JsonLinesLog(out.parent / f"{out.name}_log.jsonl") as log:
        for step in tqdm(range(1, config.steps + 1), desc="reward model", unit="step"):
            batch = [rng.choice(train) for _ in range(config.batch_size)]
            log.write({"step": step, **reward_step(model, tokenizer, optimizer, batch)})
        history = log.rows
    after = evaluate_reward_model(model, tokenizer, test)
    save_model_dir(model, tokenizer, out)
    save_curves(history, ("loss", "accuracy", "margin"), out / "reward_curves.png", "reward model")
    metrics = {
        "config": config_to_dict(config),
        "reward_model": config.reward_model,
        "parameters": sum(p.numel() for p in model.parameters()),
        "held_out_before": before,
        "held_out": after,
    }
    write_json_atomic(out / "metrics.json", metrics)
    return metrics
