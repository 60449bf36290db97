"""The embedded task's data step: label pairs of policy samples, write the datasets."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ml_core import atomic_output, seed_everything
from ml_core.cli import require_positive
from rlhf.data import PreferencePair, write_jsonl
from rlhf.models import load_policy, sample, use_torch_threads
from rlhf.task import LABELER_INSTRUCTIONS, label_pair, make_prompts

INSTRUCTIONS_NAME = "labeler_instructions.md"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Sample two answers per prompt from ``policy``; the labeler picks one."""

    out: Path = Path("runs/rlhf/data")
    """Directory for train.jsonl, test.jsonl, prompts.jsonl and the labeler's instructions."""

    policy: Path = Path("runs/rlhf/base_policy")
    """The policy to sample answers from."""

    train_pairs: int = 6000
    """Labelled pairs in train.jsonl."""

    test_pairs: int = 400
    """Labelled pairs in test.jsonl."""

    batch_size: int = 256
    """Prompts sampled at once."""

    max_new_tokens: int = 10
    """Longest sampled answer, in tokens."""

    seed: int = 0
    """Seeds prompt choice and sampling."""

    def __post_init__(self) -> None:
        require_positive(self, "train_pairs", "test_pairs", "batch_size", "max_new_tokens")


def make_preference_data(config: DataConfig) -> dict[str, Any]:
    """Write ``train.jsonl``, ``test.jsonl``, ``prompts.jsonl`` and the labeler's instructions."""
    use_torch_threads()
    seed_everything(config.seed)
    model, tokenizer = load_policy(config.policy)
    rng = random.Random(config.seed)
    prompts = make_prompts()
    wanted = config.train_pairs + config.test_pairs
    pairs: list[PreferencePair] = []
    ties = 0
    with tqdm(total=wanted, desc="labelling", unit="pair") as progress:
        while len(pairs) < wanted:
            batch = [rng.choice(prompts) for _ in range(config.batch_size)]
            first = sample(model, tokenizer, batch, config.max_new_tokens).completions
            second = sample(model, tokenizer, batch, config.max_new_tokens).completions
            for prompt, a, b in zip(batch, first, second):
                labelled = label_pair(prompt, a, b)
                if labelled is None:
                    ties += 1
                elif len(pairs) < wanted:
                    pairs.append(PreferencePair(prompt, *labelled))
                    progress.update(1)
    out = config.out
    write_jsonl(out / "train.jsonl", (p.to_dict() for p in pairs[: config.train_pairs]))
    write_jsonl(out / "test.jsonl", (p.to_dict() for p in pairs[config.train_pairs :]))
    write_jsonl(out / "prompts.jsonl", ({"prompt": p} for p in prompts))
    with atomic_output(out / INSTRUCTIONS_NAME) as temporary:
        temporary.write_text(LABELER_INSTRUCTIONS, encoding="utf-8")
    return {"train_pairs": config.train_pairs, "test_pairs": config.test_pairs, "ties": ties}
