import logging
import random
from pathlib import Path

import pytest
import torch
from rlhf_testing import PROMPTS, changed, parameters_snapshot, tiny_model, tokenizer
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rlhf.data import PreferencePair
from rlhf.dpo import dpo_step, evaluate_implicit_reward, frozen_copy, labeler_comparison
from rlhf.models import (
    PolicyWithValueHead,
    bert_tokenizer,
    encode_pairs,
    is_bert,
    load_reward_model,
    sample,
    save_model_dir,
    score_texts,
    token_logprobs,
)
from rlhf.ppo import PPOConfig, make_batch, ppo_update
from rlhf.reward import RewardConfig, build_reward_model, evaluate_reward_model, reward_step
from rlhf.task import FILLER_WORDS, make_prompts

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


def easy_pairs(count: int, seed: int) -> list[PreferencePair]:
    """The preferred answer says "thanks", the other "stupid", among random filler words."""
    rng = random.Random(seed)
    prompts = make_prompts()
    pairs = []
    for _ in range(count):
        filler = " ".join(rng.choice(FILLER_WORDS) for _ in range(rng.randint(0, 3)))
        words = filler.split()
        at = rng.randint(0, len(words))
        chosen = " " + " ".join([*words[:at], "thanks", *words[at:]])
        rejected = " " + " ".join([*words[:at], "stupid", *words[at:]])
        pairs.append(PreferencePair(rng.choice(prompts), chosen, rejected))
    return pairs


def test_bert_tokenizer_encodes_pairs_with_cls_and_sep_offline() -> None:
    tok = bert_tokenizer(["weather: talk", " thanks weather", " stupid music"], vocab_size=300)
    encoded = tok(["weather: talk"], [" thanks weather"], return_tensors="pt")
    ids = encoded["input_ids"][0].tolist()
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert ids.count(tok.sep_token_id) == 2
    segments = encoded["token_type_ids"][0].tolist()
    assert segments[0] == 0 and segments[-1] == 1
    assert tok.decode(ids, skip_special_tokens=True) == "weather: talk thanks weather"


def test_bert_reward_model_trains_and_round_trips(tmp_path: Path) -> None:
    train, test = easy_pairs(200, seed=0), easy_pairs(64, seed=1)
    config = RewardConfig(reward_model="bert", bert_hidden_size=32, bert_layers=1, bert_heads=2)
    model, tok = build_reward_model(config, train)
    assert is_bert(model)
    scores = score_texts(model, tok, [p.prompt for p in test[:5]], [p.chosen for p in test[:5]])
    assert scores.shape == (5,)  # one scalar per sequence
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = random.Random(0)
    losses = [
        reward_step(model, tok, optimizer, [rng.choice(train) for _ in range(16)])["loss"]
        for _ in range(40)
    ]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    held_out = evaluate_reward_model(model, tok, test)
    assert held_out["accuracy"] >= 0.9
    save_model_dir(model, tok, tmp_path / "bert_reward")
    loaded = load_reward_model(tmp_path / "bert_reward")
    assert is_bert(loaded)
    loaded_tok = AutoTokenizer.from_pretrained(tmp_path / "bert_reward")
    prompts, completions = [p.prompt for p in test], [p.chosen for p in test]
    torch.testing.assert_close(
        score_texts(loaded, loaded_tok, prompts, completions),
        score_texts(model, tok, prompts, completions),
    )


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_new_score_head_load_report_is_silenced_other_reports_are_not(tmp_path: Path) -> None:
    save_model_dir(tiny_model(), tokenizer(), tmp_path / "policy")
    config = tiny_model().config
    config.num_labels = 1
    from_config = AutoModelForSequenceClassification.from_config
    classifier = from_config(config)  # type: ignore[no-untyped-call]
    classifier.score = torch.nn.Linear(config.hidden_size, 1, bias=True)  # an unexpected bias
    save_model_dir(classifier, tokenizer(), tmp_path / "classifier")
    logger = logging.getLogger("transformers.modeling_utils")
    seen = Messages()
    logger.addHandler(seen)
    try:
        load_reward_model(tmp_path / "policy")  # a causal LM: only the new score head is missing
        assert not any("LOAD REPORT" in m for m in seen.messages)
        load_reward_model(tmp_path / "classifier")
        reports = [m for m in seen.messages if "LOAD REPORT" in m]
        assert len(reports) == 1 and "score.bias" in reports[0] and "UNEXPECTED" in reports[0]
    finally:
        logger.removeHandler(seen)
