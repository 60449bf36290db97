"""PPO against a reward model, with a per-token KL penalty to a frozen reference."""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from lm import load_tokenizer
from ml_core import seed_everything, write_json_atomic
from ml_core.cli import config_to_dict, require_fraction, require_non_negative, require_positive
from rlhf.data import load_prompts
from rlhf.dpo import frozen_copy
from rlhf.jsonlog import JsonLinesLog
from rlhf.losses import (
    adaptive_kl_coef,
    clipped_policy_loss,
    clipped_value_loss,
    entropy_from_logits,
    gae,
    kl_penalty_rewards,
    masked_mean,
    masked_whiten,
    ppo_total_loss,
    standardize,
)
from rlhf.models import (
    PolicyWithValueHead,
    Rollout,
    Tokenizer,
    is_bert,
    load_policy,
    load_reward_model,
    response_logits,
    sample,
    save_model_dir,
    score_texts,
    token_logprobs,
    use_torch_threads,
)
from rlhf.plots import save_curves
from rlhf.task import labeler_score, make_prompts


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO of the policy (plus a value head) against the reward model, with a per-token KL penalty
    to a frozen reference copy."""

    out: Path = Path("runs/rlhf/ppo_policy")
    """Directory for the policy, metrics.json and ppo_curves.png."""

    policy: Path = Path("runs/rlhf/base_policy")
    """The starting policy (its frozen copy is the reference)."""

    reward_model: Path = Path("runs/rlhf/reward_model")
    """The trained reward model directory."""

    prompts: Path | None = None
    """Prompt-only dataset with a 'prompt' column (unset: the task's prompts)."""

    steps: int = 40
    """PPO steps (one rollout and its update each)."""

    batch_size: int = 64
    """Answers sampled per step."""

    ppo_epochs: int = 4
    """Passes over each rollout."""

    minibatch_size: int = 32
    """Answers per gradient step."""

    learning_rate: float = 1e-3
    """AdamW learning rate."""

    clip_range: float = 0.2
    """PPO's policy-ratio clip."""

    value_clip_range: float = 0.2
    """Clip of the value prediction's change."""

    value_coef: float = 0.1
    """Weight of the value loss."""

    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""

    gamma: float = 1.0
    """Discount factor."""

    lam: float = 0.95
    """GAE lambda."""

    normalize_scores: bool = True
    """Standardise reward-model scores per batch."""

    kl_coef: float = 0.2
    """Initial weight of the per-token KL penalty (0: no penalty)."""

    adaptive_kl: bool = True
    """Adapt --kl-coef towards --kl-target (Ziegler et al.'s controller)."""

    kl_target: float = 6.0
    """KL (nats per answer) the adaptive controller aims for."""

    kl_horizon: int = 500
    """Horizon of the adaptive KL controller, in answers."""

    max_new_tokens: int = 10
    """Longest sampled answer, in tokens."""

    seed: int = 0
    """Seeds prompt choice, sampling and minibatch order."""

    def __post_init__(self) -> None:
        require_positive(
            self,
            "steps",
            "batch_size",
            "ppo_epochs",
            "minibatch_size",
            "max_new_tokens",
            "learning_rate",
            "clip_range",
            "value_clip_range",
            "kl_target",
            "kl_horizon",
        )
        require_non_negative(self, "kl_coef", "value_coef", "entropy_coef")
        require_fraction(self, "gamma")
        require_fraction(self, "lam", allow_zero=True)


@dataclasses.dataclass
class Batch:
    """A rollout with everything PPO's update needs, fixed before the update."""

    rollout: Rollout
    old_logprobs: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor

    def select(self, index: torch.Tensor) -> Batch:
        r = self.rollout
        rollout = Rollout(
            [r.prompts[i] for i in index.tolist()],
            [r.completions[i] for i in index.tolist()],
            r.query[index],
            r.query_mask[index],
            r.response[index],
            r.response_mask[index],
        )
        return Batch(
            rollout,
            self.old_logprobs[index],
            self.old_values[index],
            self.advantages[index],
            self.returns[index],
        )


@torch.no_grad()
def make_batch(
    policy: PolicyWithValueHead,
    reference: PreTrainedModel,
    rollout: Rollout,
    scores: torch.Tensor,
    config: PPOConfig,
    kl_coef: float,
) -> tuple[Batch, dict[str, float]]:
    """Old log-probs and values, KL-penalised rewards and GAE advantages of a rollout."""
    mask = rollout.response_mask.float()
    logits, values = response_logits(policy, rollout)
    assert values is not None
    logprobs = token_logprobs(logits, rollout.response)
    reference_logits, _ = response_logits(reference, rollout)
    reference_logprobs = token_logprobs(reference_logits, rollout.response)
    rewards, kl = kl_penalty_rewards(logprobs, reference_logprobs, scores, mask, kl_coef)
    advantages, returns = gae(rewards, values, mask, config.gamma, config.lam)
    batch = Batch(rollout, logprobs, values * mask, masked_whiten(advantages, mask), returns)
    stats = {
        "kl": float(kl.sum(dim=1).mean()),
        "entropy": float(masked_mean(entropy_from_logits(logits), mask)),
        "response_tokens": float(mask.sum(dim=1).mean()),
    }
    return batch, stats


def ppo_update(
    policy: PolicyWithValueHead,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    config: PPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """``ppo_epochs`` passes of minibatch updates; returns mean losses and clip fraction."""
    policy.train()
    totals: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "clip_fraction": []}
    size = len(batch.rollout.prompts)
    for _ in range(config.ppo_epochs):
        order = torch.randperm(size, generator=generator)
        for start in range(0, size, config.minibatch_size):
            mini = batch.select(order[start : start + config.minibatch_size])
            mask = mini.rollout.response_mask.float()
            logits, values = response_logits(policy, mini.rollout)
            assert values is not None
            logprobs = token_logprobs(logits, mini.rollout.response)
            policy_loss, clip_fraction = clipped_policy_loss(
                logprobs, mini.old_logprobs, mini.advantages, mask, config.clip_range
            )
            value_loss = clipped_value_loss(
                values, mini.old_values, mini.returns, mask, config.value_clip_range
            )
            entropy = masked_mean(entropy_from_logits(logits), mask)
            loss = ppo_total_loss(
                policy_loss, value_loss, entropy, config.value_coef, config.entropy_coef
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            totals["policy_loss"].append(float(policy_loss.detach()))
            totals["value_loss"].append(float(value_loss.detach()))
            totals["clip_fraction"].append(float(clip_fraction))
    return {key: statistics.fmean(values) for key, values in totals.items()}


def sample_table(
    model: PreTrainedModel, tokenizer: Tokenizer, prompts: Sequence[str], max_new_tokens: int
) -> list[dict[str, Any]]:
    completions = sample(model, tokenizer, prompts, max_new_tokens).completions
    return [
        {"prompt": p, "completion": c, "labeler_score": labeler_score(p, c)}
        for p, c in zip(prompts, completions)
    ]


def train_ppo(config: PPOConfig) -> dict[str, Any]:
    """Run PPO; logs one JSON line per step to ``<out>_log.jsonl`` and saves the policy."""
    use_torch_threads()
    seed_everything(config.seed)
    model, tokenizer = load_policy(config.policy)
    prompts = load_prompts(config.prompts) if config.prompts else make_prompts()
    reward_model = load_reward_model(config.reward_model)
    reward_model.requires_grad_(False)
    # The BERT reward model reads its own tokens; the shared-trunk one reads the policy's.
    reward_tokenizer = load_tokenizer(config.reward_model) if is_bert(reward_model) else tokenizer
    reference = frozen_copy(model)
    policy = PolicyWithValueHead(model)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.learning_rate)
    rng = random.Random(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    table_prompts = make_prompts() if not config.prompts else prompts[:24]
    before = sample_table(model, tokenizer, table_prompts, config.max_new_tokens)
    kl_coef = config.kl_coef
    out = config.out
    with JsonLinesLog(out.parent / f"{out.name}_log.jsonl") as log:
        for step in tqdm(range(1, config.steps + 1), desc="ppo", unit="step"):
            batch_prompts = [rng.choice(prompts) for _ in range(config.batch_size)]
            rollout = sample(model, tokenizer, batch_prompts, config.max_new_tokens)
            scores = score_texts(
                reward_model, reward_tokenizer, rollout.prompts, rollout.completions
            )
            # Reward-model scores have an arbitrary scale; standardising them per batch keeps the
            # value loss (and its gradient into the shared trunk) and the KL trade-off at O(1).
            rewards = standardize(scores) if config.normalize_scores else scores
            batch, stats = make_batch(policy, reference, rollout, rewards, config, kl_coef)
            losses = ppo_update(policy, optimizer, batch, config, generator)
            true_scores = [
                labeler_score(p, c) for p, c in zip(rollout.prompts, rollout.completions)
            ]
            log.write(
                {
                    "step": step,
                    "reward": float(scores.mean()),
                    "labeler_score": statistics.fmean(true_scores),
                    "kl_coef": kl_coef,
                    **stats,
                    **losses,
                }
            )
            if config.adaptive_kl:
                kl_coef = adaptive_kl_coef(
                    kl_coef, stats["kl"], config.kl_target, config.batch_size, config.kl_horizon
                )
        history = log.rows
    after = sample_table(model, tokenizer, table_prompts, config.max_new_tokens)
    save_model_dir(model, tokenizer, out)
    save_curves(
        history,
        ("reward", "labeler_score", "kl", "entropy", "clip_fraction"),
        out / "ppo_curves.png",
        f"PPO (kl_coef {config.kl_coef}, adaptive {config.adaptive_kl})",
    )
    window = max(1, min(5, len(history)))
    summary = {
        key: {
            "first": statistics.fmean(row[key] for row in history[:window]),
            "last": statistics.fmean(row[key] for row in history[-window:]),
        }
        for key in ("reward", "labeler_score", "kl", "entropy")
    }
    result = {
        "config": config_to_dict(config),
        "summary_first_last_5_steps": summary,
        "max_kl": max(row["kl"] for row in history),
        "distinct_completions_after": len({row["completion"] for row in after}),
        "samples_before": before,
        "samples_after": after,
    }
    write_json_atomic(out / "metrics.json", result)
    return result
