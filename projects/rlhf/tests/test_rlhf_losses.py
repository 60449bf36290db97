import math

import pytest
import torch

from rlhf.losses import (
    adaptive_kl_coef,
    bradley_terry_loss,
    clipped_policy_loss,
    clipped_value_loss,
    dpo_loss,
    entropy_from_logits,
    gae,
    kl_penalty_rewards,
    masked_mean,
    masked_whiten,
    ppo_total_loss,
    standardize,
)


def t(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_bradley_terry_loss_matches_hand_computed_values() -> None:
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]))
    expected = (math.log(1 + math.exp(-1)) + math.log(2)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # Swapping chosen and rejected makes the loss larger.
    assert float(bradley_terry_loss(torch.tensor([0.0]), torch.tensor([1.0]))) > float(loss)


def test_dpo_loss_and_implicit_rewards() -> None:
    loss, chosen, rejected = dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), 0.5
    )
    assert float(chosen) == pytest.approx(0.5)
    assert float(rejected) == pytest.approx(-0.5)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1.0)), rel=1e-6)
    # The policy equal to the reference gives log 2, whatever beta.
    same, _, _ = dpo_loss(*(torch.tensor([-1.0]),) * 4, beta=3.0)
    assert float(same) == pytest.approx(math.log(2))


def test_gae_on_a_known_sequence() -> None:
    rewards, values, mask = t([0.0, 0.0, 1.0]), t([0.5, 0.6, 0.7]), t([1.0, 1.0, 1.0])
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    assert advantages.tolist()[0] == pytest.approx([0.5, 0.4, 0.3])
    assert returns.tolist()[0] == pytest.approx([1.0, 1.0, 1.0])
    advantages, _ = gae(rewards, values, mask, gamma=0.9, lam=0.5)
    assert advantages.tolist()[0] == pytest.approx([0.11425, 0.165, 0.3])


def test_gae_ignores_tokens_after_the_end_of_a_response() -> None:
    advantages, returns = gae(t([0.0, 1.0, 5.0]), t([0.5, 0.6, 9.0]), t([1.0, 1.0, 0.0]), 1.0, 1.0)
    assert advantages.tolist()[0] == pytest.approx([0.5, 0.4, 0.0])
    assert returns.tolist()[0] == pytest.approx([1.0, 1.0, 0.0])


def test_kl_penalty_sign_score_placement_and_masking() -> None:
    logprobs, reference = t([-1.0, -2.0, -3.0]), t([-1.5, -1.0, -0.1])
    rewards, kl = kl_penalty_rewards(logprobs, reference, torch.tensor([2.0]), t([1, 1, 0]), 0.1)
    # More likely than under the reference: positive KL term, negative reward; padding: zero.
    assert kl.tolist()[0] == pytest.approx([0.5, -1.0, 0.0])
    assert rewards.tolist()[0] == pytest.approx([-0.05, 0.1 + 2.0, 0.0])
    none, _ = kl_penalty_rewards(logprobs, reference, torch.tensor([2.0]), t([1, 1, 0]), 0.0)
    assert none.tolist()[0] == pytest.approx([0.0, 2.0, 0.0])


def test_clipped_policy_loss_and_clip_fraction() -> None:
    logprobs = t([math.log(1.5), math.log(0.5), math.log(1.5)])
    loss, clip_fraction = clipped_policy_loss(
        logprobs, torch.zeros(1, 3), t([1.0, 1.0, -1.0]), torch.ones(1, 3), 0.2
    )
    # Per token: max(-1.5, -1.2) = -1.2 (clipped); max(-0.5, -0.8) = -0.5; max(1.5, 1.2) = 1.5.
    assert float(loss) == pytest.approx((-1.2 - 0.5 + 1.5) / 3, rel=1e-5)
    assert float(clip_fraction) == pytest.approx(1 / 3)


def test_clipped_value_loss() -> None:
    loss = clipped_value_loss(t([1.0, 0.0]), t([0.0, 0.0]), t([1.0, 1.0]), t([1.0, 1.0]), 0.2)
    # Token 0: max(0, (0.2 - 1)^2) = 0.64; token 1: max(1, 1) = 1.
    assert float(loss) == pytest.approx(0.5 * (0.64 + 1.0) / 2)
    masked = clipped_value_loss(t([1.0, 0.0]), t([0.0, 0.0]), t([1.0, 1.0]), t([1.0, 0.0]), 0.2)
    assert float(masked) == pytest.approx(0.5 * 0.64)


def test_entropy_total_loss_and_masked_statistics() -> None:
    assert float(entropy_from_logits(torch.zeros(4))) == pytest.approx(math.log(4))
    assert float(entropy_from_logits(torch.tensor([100.0, 0.0, 0.0]))) == pytest.approx(0, abs=1e-6)
    total = ppo_total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), 0.5, 0.1)
    assert float(total) == pytest.approx(1.0 + 0.5 * 2.0 - 0.1 * 3.0)
    assert float(masked_mean(t([1.0, 3.0, 100.0]), t([1.0, 1.0, 0.0]))) == pytest.approx(2.0)
    white = masked_whiten(t([1.0, 3.0, 100.0]), t([1.0, 1.0, 0.0]))
    assert white.tolist()[0] == pytest.approx([-1.0, 1.0, 0.0], abs=1e-4)


def test_adaptive_kl_coefficient_moves_towards_the_target() -> None:
    assert adaptive_kl_coef(0.2, 6.0, 4.0, 100, 1000) == pytest.approx(0.2 * 1.02)  # clipped
    assert adaptive_kl_coef(0.2, 3.6, 4.0, 100, 1000) == pytest.approx(0.2 * 0.99)
    assert adaptive_kl_coef(0.2, 4.0, 4.0, 100, 1000) == pytest.approx(0.2)


def test_standardize_scores() -> None:
    values = standardize(torch.tensor([1.0, 3.0]))
    assert values.tolist() == pytest.approx([-1.0, 1.0], abs=1e-6)
