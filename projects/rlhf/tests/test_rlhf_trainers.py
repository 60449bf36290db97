import pytest
import torch
from rlhf_testing import PROMPTS, changed, parameters_snapshot, tiny_model, tokenizer
from transformers import AutoModelForSequenceClassification

from rlhf.data import PreferencePair
from rlhf.dpo import dpo_step, evaluate_implicit_reward, frozen_copy, labeler_comparison
from rlhf.models import PolicyWithValueHead, encode_pairs, sample, token_logprobs
from rlhf.ppo import PPOConfig, make_batch, ppo_update
from rlhf.reward import evaluate_reward_model, reward_step

PAIRS = [
    PreferencePair("tell me about weather:", " thanks weather", " stupid music"),
    PreferencePair("talk food:", " food", " ugh whatever books"),
]


def test_encoding_marks_only_completion_tokens() -> None:
    tok = tokenizer()
    ids, mask, completion = encode_pairs(tok, ["talk food:", "what about music?"], [" food", " ok"])
    assert ids.shape == mask.shape == completion.shape
    eos = tok.eos_token_id
    for row in range(2):
        marked = ids[row][completion[row].bool()].tolist()
        assert marked[-1] == eos  # the completion ends with eos
        assert not completion[row][mask[row] == 0].any()  # never on padding
    assert tok.decode(ids[0][completion[0].bool()][:-1].tolist()) == " food"


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_reward_step_trains_the_classifier(preset: str) -> None:
    torch.manual_seed(0)
    config = tiny_model(preset).config
    config.num_labels = 1
    model = AutoModelForSequenceClassification.from_config(config)  # type: ignore[no-untyped-call]
    before = parameters_snapshot(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    metrics = reward_step(model, tokenizer(), optimizer, PAIRS)
    assert set(metrics) == {"loss", "accuracy", "margin"}
    assert changed(before, model) == set(before)  # head and trunk both learn
    for _ in range(20):
        reward_step(model, tokenizer(), optimizer, PAIRS)
    assert evaluate_reward_model(model, tokenizer(), PAIRS)["accuracy"] == 1.0


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_dpo_step_changes_the_policy_not_the_reference(preset: str) -> None:
    policy = tiny_model(preset)
    reference = frozen_copy(policy)
    before_policy, before_reference = parameters_snapshot(policy), parameters_snapshot(reference)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    first = dpo_step(policy, reference, tokenizer(), optimizer, PAIRS, beta=0.1)
    assert first["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at first
    assert changed(before_policy, policy)
    assert not changed(before_reference, reference)
    for _ in range(10):
        dpo_step(policy, reference, tokenizer(), optimizer, PAIRS, beta=0.1)
    held_out = evaluate_implicit_reward(policy, reference, tokenizer(), PAIRS, beta=0.1)
    assert held_out["accuracy"] == 1.0 and held_out["margin"] > 0


def test_sampled_responses_are_masked_after_the_first_eos() -> None:
    torch.manual_seed(0)
    tok = tokenizer()
    rollout = sample(tiny_model(), tok, PROMPTS * 4, max_new_tokens=6)
    assert rollout.response.shape[1] <= 6
    for row in range(len(rollout.prompts)):
        tokens, mask = rollout.response[row].tolist(), rollout.response_mask[row].tolist()
        if tok.eos_token_id in tokens:
            end = tokens.index(tok.eos_token_id)
            assert mask == [1] * (end + 1) + [0] * (len(tokens) - end - 1)
            assert all(t == tok.pad_token_id for t in tokens[end + 1 :])
        else:
            assert all(mask)


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_ppo_update_changes_policy_and_value_head_not_the_reference(preset: str) -> None:
    torch.manual_seed(0)
    model = tiny_model(preset)
    reference = frozen_copy(model)
    policy = PolicyWithValueHead(model)
    config = PPOConfig(batch_size=8, minibatch_size=4, ppo_epochs=2, max_new_tokens=5)
    rollout = sample(model, tokenizer(), PROMPTS * 2, config.max_new_tokens)
    scores = torch.linspace(-1, 1, len(PROMPTS) * 2)
    batch, stats = make_batch(policy, reference, rollout, scores, config, kl_coef=0.1)
    # Policy equals reference before the update: the KL estimate is exactly zero.
    assert stats["kl"] == pytest.approx(0.0, abs=1e-5)
    assert not batch.advantages[rollout.response_mask == 0].any()
    before_policy, before_reference = parameters_snapshot(policy), parameters_snapshot(reference)
    losses = ppo_update(
        policy,
        torch.optim.AdamW(policy.parameters(), lr=1e-2),
        batch,
        config,
        torch.Generator().manual_seed(0),
    )
    assert set(losses) == {"policy_loss", "value_loss", "clip_fraction"}
    moved = changed(before_policy, policy)
    assert "value_head.weight" in moved and any(name.startswith("model.") for name in moved)
    assert not changed(before_reference, reference)
    _, after = make_batch(policy, reference, rollout, scores, config, kl_coef=0.1)
    assert after["kl"] != pytest.approx(0.0, abs=1e-5)


def test_token_logprobs_gather_the_right_tokens() -> None:
    logits = torch.log(torch.tensor([[[0.1, 0.9], [0.7, 0.3]]]))
    values = token_logprobs(logits, torch.tensor([[1, 0]])).exp()
    assert values.tolist()[0] == pytest.approx([0.9, 0.7])


def test_labeler_comparison_counts_wins_losses_and_ties() -> None:
    prompt = "talk food:"
    result = labeler_comparison(
        [(prompt, " stupid"), (prompt, " food"), (prompt, " nice")],
        [(prompt, " food"), (prompt, " stupid"), (prompt, " good")],
    )
    assert (result["wins"], result["losses"], result["ties"]) == (1, 1, 1)
    assert result["win_rate_decided"] == 0.5
