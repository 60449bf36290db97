"""The embedded synthetic task: prompts, a random answer generator and a rule- based "labeler".

The labeler stands in for human annotators: it follows the written :data:`LABELER_INSTRUCTIONS`
exactly, so every preference has a ground truth and a tiny model can learn the task on a CPU in
minutes.
"""

from __future__ import annotations

import random

TOPICS = ("weather", "music", "food", "sports", "books", "travel", "games", "movies")
# The topic comes first in every prompt: a 2-layer model finds it there reliably, which makes
# "on topic" (a match between prompt and answer) learnable by a tiny reward model.
TEMPLATES = ("{topic}: tell me about it", "{topic}? what about it", "{topic}: talk")
POLITE_WORDS = ("please", "thanks", "kindly")
RUDE_WORDS = ("ugh", "whatever", "boring")
BANNED_WORD = "stupid"
FILLER_WORDS = ("it", "is", "so", "nice", "good", "maybe", "well", "really", "the", "fun")

LABELER_INSTRUCTIONS = f"""\
# Labeler instructions

You see one prompt of the form "TOPIC: tell me about it" and two answers. Prefer the answer
with the higher score, computed as follows (ties: no preference, the pair is dropped).

1. Never prefer an answer containing the banned word "{BANNED_WORD}": it scores -10.
2. Polite: +1 if the answer contains any of {", ".join(POLITE_WORDS)}.
3. On topic: +2 if the answer names the prompt's topic (topics: {", ".join(TOPICS)}).
4. Shorter is better: -0.2 per word.

Rude words ({", ".join(RUDE_WORDS)}) and other topics cost nothing beyond their length.
"""


def make_prompts() -> list[str]:
    """Every prompt of the task: each template for each topic."""
    return [template.format(topic=topic) for topic in TOPICS for template in TEMPLATES]


def prompt_topic(prompt: str) -> str | None:
    """The topic a prompt asks about, or None when it names none."""
    for topic in TOPICS:
        if topic in prompt.split() or f"{topic}:" in prompt or f"{topic}?" in prompt:
            return topic
    return None


def labeler_score(prompt: str, completion: str) -> float:
    """The labeler's score of ``completion`` for ``prompt`` (see :data:`LABELER_INSTRUCTIONS`)."""
    words = completion.split()
    topic = prompt_topic(prompt)
    score = -0.2 * len(words)
    if BANNED_WORD in words:
        score -= 10.0
    if any(word in POLITE_WORDS for word in words):
        score += 1.0
    if topic is not None and topic in words:
        score += 2.0
    return round(score, 6)


def label_pair(prompt: str, first: str, second: str) -> tuple[str, str] | None:
    """``(chosen, rejected)`` by the labeler, or None for a tie."""
    a, b = labeler_score(prompt, first), labeler_score(prompt, second)
    if a == b:
        return None
    return (first, second) if a > b else (second, first)


def random_completion(prompt: str, rng: random.Random) -> str:
    """An answer of 1-7 words drawn from the task's vocabulary, good or bad alike.

    The starting policy is trained to imitate these, so it begins as a broad mix of polite, rude,
    on- and off-topic answers.
    """
    topic = prompt_topic(prompt) or rng.choice(TOPICS)
    words = []
    for _ in range(rng.randint(1, 7)):
        draw = rng.random()
        if draw < 0.15:
            words.append(topic)
        elif draw < 0.3:
            words.append(rng.choice(TOPICS))
        elif draw < 0.45:
            words.append(rng.choice(POLITE_WORDS))
        elif draw < 0.57:
            words.append(rng.choice(RUDE_WORDS))
        elif draw < 0.62:
            words.append(BANNED_WORD)
        else:
            words.append(rng.choice(FILLER_WORDS))
    return " " + " ".join(words)


def task_corpus(num_examples: int, seed: int) -> list[tuple[str, str]]:
    """``(prompt, completion)`` examples to train the starting policy on."""
    rng = random.Random(seed)
    prompts = make_prompts()
    examples = []
    for _ in range(num_examples):
        prompt = rng.choice(prompts)
        examples.append((prompt, random_completion(prompt, rng)))
    return examples
