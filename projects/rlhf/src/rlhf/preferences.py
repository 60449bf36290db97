"""The embedded task's data step: label pairs of policy samples, write the
datasets."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ml_core import atomic_output, seed_everything
from rlhf.data import PreferencePair, write_jsonl
from rlhf.models import load_policy, sample
from rlhf.task import LABELER_INSTRUCTIONS, label_pair, make_prompts

INSTRUCTIONS_NAME = "labeler_instructions.md"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Sample two answers per prompt from ``policy``; the labeler picks one."""

    out: Path = Path("runs/rlhf/data")
    policy: Path = Path("runs/rlhf/base_policy")
    train_pairs: int = 6000
    test_pairs: int = 400
    batch_size: int = 256
    max_new_tokens: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("train_pairs", "test_pairs", "batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1.")


def make_preference_data(config: DataConfig) -> dict[str, Any]:
    """Write ``train.jsonl``, ``test.jsonl``, ``prompts.jsonl`` and the
    labeler's instructions."""
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
