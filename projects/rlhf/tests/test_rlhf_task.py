import random

import pytest

from rlhf.task import (
    LABELER_INSTRUCTIONS,
    TOPICS,
    label_pair,
    labeler_score,
    make_prompts,
    prompt_topic,
    random_completion,
)


def test_prompts_cover_every_topic() -> None:
    prompts = make_prompts()
    assert {prompt_topic(p) for p in prompts} == set(TOPICS)


@pytest.mark.parametrize(
    ("completion", "score"),
    [
        (" weather", 2.0 - 0.2),
        (" thanks weather", 1.0 + 2.0 - 0.4),
        (" thanks music", 1.0 - 0.4),
        (" ugh weather", 2.0 - 0.4),
        (" stupid weather thanks", -10.0 + 2.0 + 1.0 - 0.6),
        ("", 0.0),
    ],
)
def test_labeler_score_follows_the_instructions(completion: str, score: float) -> None:
    assert labeler_score("tell me about weather:", completion) == pytest.approx(score)


def test_label_pair_prefers_higher_scores_and_drops_ties() -> None:
    prompt = "what about food?"
    assert label_pair(prompt, " stupid food", " nice") == (" nice", " stupid food")
    assert label_pair(prompt, " please food", " food") == (" please food", " food")
    assert label_pair(prompt, " nice", " good") is None


def test_random_completions_use_the_task_words() -> None:
    rng = random.Random(0)
    completions = [random_completion("talk books:", rng) for _ in range(200)]
    assert all(1 <= len(c.split()) <= 7 for c in completions)
    assert any("books" in c.split() for c in completions)
    assert "banned word" in LABELER_INSTRUCTIONS
