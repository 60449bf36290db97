"""The RLHF losses and PPO's advantage and KL pieces, each a small pure function.

Tensors of per-token quantities are ``(batch, response_length)``; ``mask`` is 1.0 on response tokens
that count and 0.0 on padding after the end of a response (prompt tokens never appear in these
tensors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values`` shifted and scaled to zero mean, unit variance over the mask."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(variance + 1e-8) * mask


def standardize(values: torch.Tensor) -> torch.Tensor:
    """``values`` shifted and scaled to zero mean and unit standard deviation."""
    return (values - values.mean()) / (values.std(unbiased=False) + 1e-8)


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Pairwise reward-model loss: mean of ``-log sigmoid(r_chosen - r_rejected)``."""
    return -F.logsigmoid(chosen - rejected).mean()


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO loss from sequence log-probabilities, and the implicit rewards.

    Returns ``(loss, chosen_rewards, rejected_rewards)`` where a
    reward is ``beta * (log pi - log pi_ref)`` and the loss is the mean
    of ``-log sigmoid(chosen_reward - rejected_reward)``.
    """
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def kl_penalty_rewards(
    logprobs: torch.Tensor,
    reference_logprobs: torch.Tensor,
    scores: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: ``-kl_coef * (log pi - log pi_ref)`` on every
    response token, plus the sequence score on its last token.

    Returns ``(rewards, kl)`` with the per-token KL estimate ``kl``;
    both are zero where ``mask`` is 0.
    """
    kl = (logprobs - reference_logprobs) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rows = torch.arange(len(scores))
    rewards[rows, last] += scores * (mask.sum(dim=1) > 0).to(scores.dtype)
    return rewards, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and ``A_t = delta_t +
    gamma * lam * A_{t+1}``, with ``V`` and ``A`` zero after the last
    masked-in token. Returns ``(advantages, returns = advantages +
    values)``.
    """
    values = values * mask
    length = rewards.shape[1]
    next_advantage = torch.zeros_like(rewards[:, 0])
    advantages = torch.zeros_like(rewards)
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(values[:, 0])
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = (delta + gamma * lam * next_advantage) * mask[:, t]
        advantages[:, t] = next_advantage
    return advantages, (advantages + values) * mask


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate: ``max(-A * ratio, -A * clip(ratio, 1 - eps, 1 +
    eps))``.

    Returns ``(loss, clip_fraction)``: the fraction of tokens where the
    clipped term was the larger.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).to(logprobs.dtype), mask)
    return loss, clip_fraction.detach()


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> torch.Tensor:
    """PPO's clipped value loss: ``0.5 * max((V - R)^2, (V_clipped - R)^2)``
    with ``V_clipped`` within ``clip_range`` of the old value."""
    clipped = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    losses = torch.maximum((values - returns) ** 2, (clipped - returns) ** 2)
    return 0.5 * masked_mean(losses, mask)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position of
    ``logits``."""
    log_probs = F.log_softmax(logits, dim=-1)
    return -(log_probs.exp() * log_probs).sum(dim=-1)


def ppo_total_loss(
    policy_loss: torch.Tensor,
    value_loss: torch.Tensor,
    entropy: torch.Tensor,
    value_coef: float,
    entropy_coef: float,
) -> torch.Tensor:
    """The article's total: ``policy + a * value - b * entropy`` (the entropy
    bonus lowers the loss)."""
    return policy_loss + value_coef * value_loss - entropy_coef * entropy


def adaptive_kl_coef(
    kl_coef: float, kl: float, target: float, num_samples: int, horizon: int
) -> float:
    """Ziegler et al.'s proportional controller: move ``kl_coef`` by
    ``clip(kl / target - 1, -0.2, 0.2) * num_samples / horizon``."""
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return kl_coef * (1.0 + error * num_samples / horizon)
