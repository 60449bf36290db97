"""Scoring as lm-evaluation-harness does it.

Rank classification: each option's continuation ``target_delimiter + option`` is scored by its
summed log-likelihood given the prompt; ``acc`` takes the argmax of the sums, ``acc_norm`` of the
sums divided by the option's length in characters (lm-eval's normalisation). Generation: greedy
decoding until the few-shot delimiter, compared by exact match and by normalised match (case,
punctuation and spacing ignored).
"""

from __future__ import annotations

import dataclasses
import random
import re
import string
import time
from collections.abc import Sequence
from typing import Any

from few_shot.backends import Backend
from few_shot.prompts import Ordering, Prompt, PromptBuilder, Selection
from few_shot.tasks import Task, TaskError


def normalise(text: str) -> str:
    """Lower case, no punctuation, single spaces."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return re.sub(r"\s+", " ", text).strip()


@dataclasses.dataclass(frozen=True)
class DrawResult:
    """Scores of one demonstration draw over all queries."""

    k: int
    draw: int
    acc: float | None
    acc_norm: float | None
    exact_match: float | None
    normalised_match: float | None
    seconds: float
    prompts: tuple[dict[str, Any], ...]


def score_draw(
    backend: Backend,
    task: Task,
    builder: PromptBuilder,
    k: int,
    draw: int,
    *,
    selection: Selection = "random",
    ordering: Ordering = "as-selected",
    generation: bool = False,
    seed: int = 0,
    max_tokens: int = 8,
) -> DrawResult:
    """Build one prompt per query (demonstrations drawn with the seed of ``draw``) and score
    them."""
    rng = random.Random(seed * 1_000_003 + draw * 7919 + k)
    prompts: list[Prompt] = [
        builder.build(query, k, selection=selection, ordering=ordering, rng=rng)
        for query in task.queries
    ]
    started = time.perf_counter()
    acc = acc_norm = exact = normalised = None
    records: list[dict[str, Any]] = [
        {"context": p.context, "target": p.query.target} for p in prompts
    ]
    delimiter = builder.format.target_delimiter
    if task.options:
        requests = [(p.context, delimiter + option) for p in prompts for option in task.options]
        results = backend.loglikelihood(requests)
        n = len(task.options)
        hits = hits_norm = 0
        for index, prompt in enumerate(prompts):
            scores = [r.logprob for r in results[index * n : (index + 1) * n]]
            normed = [s / len(option) for s, option in zip(scores, task.options)]
            best = task.options[max(range(n), key=scores.__getitem__)]
            best_norm = task.options[max(range(n), key=normed.__getitem__)]
            hits += best == prompt.query.target
            hits_norm += best_norm == prompt.query.target
            records[index]["loglikelihoods"] = dict(zip(task.options, scores))
            records[index]["prediction"] = best
        acc = hits / len(prompts)
        acc_norm = hits_norm / len(prompts)
    if generation or not task.options:
        until = builder.format.fewshot_delimiter.strip() or builder.format.fewshot_delimiter
        outputs = backend.generate([p.context for p in prompts], until, max_tokens)
        exact_hits = sum(o.strip() == p.query.target.strip() for o, p in zip(outputs, prompts))
        norm_hits = sum(normalise(o) == normalise(p.query.target) for o, p in zip(outputs, prompts))
        for record, output in zip(records, outputs):
            record["generation"] = output
        exact = exact_hits / len(prompts)
        normalised = norm_hits / len(prompts)
    return DrawResult(
        k, draw, acc, acc_norm, exact, normalised, time.perf_counter() - started, tuple(records)
    )


def check_request(backend: Backend, task: Task, ks: Sequence[int]) -> None:
    """Refuse, before any scoring, a k larger than the pool or label words the model lacks."""
    largest = max(ks)
    if largest > len(task.demonstrations):
        raise TaskError(
            f"{largest}-shot needs {largest} demonstrations but the task {task.name!r} has only "
            f"{len(task.demonstrations)} in its pool"
        )
    unknown = backend.unknown_words(task.options)
    if unknown:
        raise TaskError(
            f"the model {backend.name} has no token for the label word(s) {unknown} of task "
            f"{task.name!r} (they encode to its unknown token)"
        )
