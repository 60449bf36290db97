"""Direct preference optimisation against a frozen reference copy of the policy."""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from ml_core import seed_everything, write_json_atomic
from ml_core.cli import config_to_dict, require_positive
from rlhf.data import PreferencePair, load_preferences
from rlhf.jsonlog import JsonLinesLog
from rlhf.losses import dpo_loss
from rlhf.models import (
    Tokenizer,
    encode_pairs,
    load_policy,
    sample,
    save_model_dir,
    sequence_logprobs,
    set_eval,
    use_torch_threads,
)
from rlhf.plots import save_curves
from rlhf.task import labeler_score, make_prompts


@dataclasses.dataclass(frozen=True)
class DPOConfig:
    """Direct preference optimisation of the policy against a frozen copy of itself."""

    out: Path = Path("runs/rlhf/dpo_policy")
    """Directory for the policy, metrics.json and dpo_curves.png."""

    policy: Path = Path("runs/rlhf/base_policy")
    """The starting policy (its frozen copy is the reference)."""

    train_data: Path = Path("runs/rlhf/data/train.jsonl")
    """Preference pairs to train on (.jsonl, .csv or a datasets directory)."""

    test_data: Path = Path("runs/rlhf/data/test.jsonl")
    """Held-out preference pairs for the implicit-reward accuracy."""

    beta: float = 0.1
    """Strength of the implicit KL constraint to the reference."""

    steps: int = 500
    """Optimiser steps."""

    batch_size: int = 32
    """Pairs per step."""

    learning_rate: float = 1e-3
    """AdamW learning rate."""

    comparison_samples: int = 8
    """Answers per prompt that the labeler compares before and after DPO."""

    max_new_tokens: int = 10
    """Longest sampled answer, in tokens."""

    seed: int = 0
    """Seeds batch sampling and generation."""

    def __post_init__(self) -> None:
        require_positive(
            self,
            "beta",
            "steps",
            "batch_size",
            "learning_rate",
            "comparison_samples",
            "max_new_tokens",
        )


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A reference copy that takes no gradients."""
    reference = copy.deepcopy(model)
    set_eval(reference)
    reference.requires_grad_(False)
    return reference


def pair_logprobs(
    model: PreTrainedModel, tokenizer: Tokenizer, pairs: Sequence[PreferencePair]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence log-probabilities of the chosen and rejected completions."""
    prompts = [p.prompt for p in pairs] * 2
    completions = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    logprobs = sequence_logprobs(model, *encode_pairs(tokenizer, prompts, completions))
    return logprobs[: len(pairs)], logprobs[len(pairs) :]


def dpo_step(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: Tokenizer,
    optimizer: torch.optim.Optimizer,
    pairs: Sequence[PreferencePair],
    beta: float,
) -> dict[str, float]:
    """One DPO step; returns loss, implicit-reward accuracy and margin."""
    policy.train()
    with torch.no_grad():
        reference_chosen, reference_rejected = pair_logprobs(reference, tokenizer, pairs)
    chosen, rejected = pair_logprobs(policy, tokenizer, pairs)
    loss, chosen_rewards, rejected_rewards = dpo_loss(
        chosen, rejected, reference_chosen, reference_rejected, beta
    )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    optimizer.step()
    margin = chosen_rewards - rejected_rewards
    return {
        "loss": float(loss.detach()),
        "accuracy": float((margin > 0).float().mean()),
        "margin": float(margin.mean()),
        "chosen_reward": float(chosen_rewards.mean()),
        "rejected_reward": float(rejected_rewards.mean()),
    }


@torch.no_grad()
def evaluate_implicit_reward(
    policy: PreTrainedModel,
    reference: PreTrainedModel,
    tokenizer: Tokenizer,
    pairs: Sequence[PreferencePair],
    beta: float,
    batch_size: int = 256,
) -> dict[str, float]:
    """Held-out accuracy and mean margin of the implicit reward ``beta * (log
    pi - log pi_ref)``."""
    set_eval(policy)
    margins = []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        chosen, rejected = pair_logprobs(policy, tokenizer, batch)
        reference_chosen, reference_rejected = pair_logprobs(reference, tokenizer, batch)
        margins.append(beta * ((chosen - reference_chosen) - (rejected - reference_rejected)))
    margin = torch.cat(margins)
    return {"accuracy": float((margin > 0).float().mean()), "margin": float(margin.mean())}


def labeler_comparison(
    before: Sequence[tuple[str, str]], after: Sequence[tuple[str, str]]
) -> dict[str, float]:
    """How often the labeler prefers the ``after`` answer to the ``before`` answer of the same
    prompt."""
    wins = losses = ties = 0
    for (prompt, old), (same_prompt, new) in zip(before, after, strict=True):
        assert prompt == same_prompt
        old_score, new_score = labeler_score(prompt, old), labeler_score(prompt, new)
        wins += new_score > old_score
        losses += new_score < old_score
        ties += new_score == old_score
    decided = max(wins + losses, 1)
    return {
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "win_rate_decided": wins / decided,
        "win_rate_all": wins / max(len(before), 1),
    }


def train_dpo(config: DPOConfig) -> dict[str, Any]:
    """Train with DPO, evaluate on held-out pairs and against the starting policy."""
    use_torch_threads()
    seed_everything(config.seed)
    train, test = load_preferences(config.train_data), load_preferences(config.test_data)
    policy, tokenizer = load_policy(config.policy)
    reference = frozen_copy(policy)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate)
    rng = random.Random(config.seed)
    out = config.out
    with JsonLinesLog(out.parent / f"{out.name}_log.jsonl") as log:
        for step in tqdm(range(1, config.steps + 1), desc="dpo", unit="step"):
            batch = [rng.choice(train) for _ in range(config.batch_size)]
            metrics = dpo_step(policy, reference, tokenizer, optimizer, batch, config.beta)
            log.write({"step": step, **metrics})
        history = log.rows
    held_out = evaluate_implicit_reward(policy, reference, tokenizer, test, config.beta)
    prompts = make_prompts() * config.comparison_samples
    old = sample(reference, tokenizer, prompts, config.max_new_tokens).completions
    new = sample(policy, tokenizer, prompts, config.max_new_tokens).completions
    comparison = labeler_comparison(list(zip(prompts, old)), list(zip(prompts, new)))
    save_model_dir(policy, tokenizer, out)
    save_curves(history, ("loss", "accuracy", "margin"), out / "dpo_curves.png", "DPO")
    samples = [
        {
            "prompt": p,
            "before": o,
            "after": n,
            "score_before": labeler_score(p, o),
            "score_after": labeler_score(p, n),
        }
        for p, o, n in list(zip(prompts, old, new))[: len(make_prompts())]
    ]
    result = {
        "config": config_to_dict(config),
        "held_out_implicit_reward": held_out,
        "labeler_after_vs_before": comparison,
        "mean_labeler_score_before": sum(labeler_score(p, o) for p, o in zip(prompts, old))
        / len(prompts),
        "mean_labeler_score_after": sum(labeler_score(p, n) for p, n in zip(prompts, new))
        / len(prompts),
        "samples": samples,
    }
    write_json_atomic(out / "metrics.json", result)
    return result
