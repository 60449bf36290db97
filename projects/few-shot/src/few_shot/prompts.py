"""Prompt formats and k-shot prompt building with demonstration selection and ordering.

The layout follows lm-evaluation-harness: ``description + demo_1 + fewshot_delimiter + ... +
fewshot_delimiter + query``, where a demonstration is ``text(doc) + target_delimiter + target(doc)``
and the scored continuation is ``target_delimiter + option``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from few_shot.tasks import Example, Task, TaskError

Selection = Literal["random", "balanced", "similar", "first"]
Ordering = Literal["as-selected", "random", "similar-last"]
SELECTIONS: tuple[str, ...] = ("random", "balanced", "similar", "first")
FORMAT_FILE = "few_shot_format.json"


@dataclasses.dataclass(frozen=True)
class PromptFormat:
    """How a model expects a prompt to be laid out."""

    name: str
    query_template: str = "{input} ="
    target_delimiter: str = " "
    fewshot_delimiter: str = " ; "
    description_suffix: str = " "

    def text(self, example: Example) -> str:
        return self.query_template.format(input=example.input)

    def demonstration(self, example: Example) -> str:
        return self.text(example) + self.target_delimiter + example.target


FORMATS: dict[str, PromptFormat] = {
    # The format the synthetic ICL model was pretrained on: ``wug = red ; dax = blue ; zib =``.
    "icl": PromptFormat("icl"),
    # A generic question/answer layout for other causal LMs.
    "qa": PromptFormat(
        "qa",
        query_template="Input: {input}\nOutput:",
        target_delimiter=" ",
        fewshot_delimiter="\n\n",
        description_suffix="\n\n",
    ),
}


def format_for_model(model: str, requested: str | None) -> PromptFormat:
    """``requested`` if given, else the format a model directory names in ``few_shot_format.json``,
    else ``qa``."""
    if requested is not None:
        if requested not in FORMATS:
            raise TaskError(f"unknown prompt format {requested!r}; choose one of {sorted(FORMATS)}")
        return FORMATS[requested]
    path = Path(model) / FORMAT_FILE
    if path.is_file():
        name = json.loads(path.read_text())["format"]
        return FORMATS[name]
    return FORMATS["qa"]


@dataclasses.dataclass(frozen=True)
class Prompt:
    """A built prompt: the context, the demonstrations used and the query."""

    context: str
    demonstrations: tuple[Example, ...]
    query: Example


_WORD = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class BM25:
    """Okapi BM25 over the inputs of a demonstration pool (k1 = 1.5, b = 0.75)."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.documents = [_tokens(document) for document in documents]
        self.k1, self.b = k1, b
        self.average = sum(map(len, self.documents)) / max(1, len(self.documents)) or 1.0
        frequency: Counter[str] = Counter()
        for document in self.documents:
            frequency.update(set(document))
        count = len(self.documents)
        self.idf = {
            term: math.log(1 + (count - n + 0.5) / (n + 0.5)) for term, n in frequency.items()
        }

    def scores(self, query: str) -> list[float]:
        terms = _tokens(query)
        result = []
        for document in self.documents:
            counts = Counter(document)
            norm = self.k1 * (1 - self.b + self.b * len(document) / self.average)
            score = 0.0
            for term in terms:
                tf = counts.get(term, 0)
                if tf:
                    score += self.idf.get(term, 0.0) * tf * (self.k1 + 1) / (tf + norm)
            result.append(score)
        return result


class PromptBuilder:
    """Builds zero-, one- and k-shot prompts for the queries of ``task``."""

    def __init__(self, task: Task, prompt_format: PromptFormat) -> None:
        self.task = task
        self.format = prompt_format
        self._bm25: BM25 | None = None

    def select(
        self, query: Example, k: int, selection: Selection, rng: random.Random
    ) -> list[Example]:
        pool = list(self.task.demonstrations)
        if k > len(pool):
            raise TaskError(
                f"{k}-shot needs {k} demonstrations but the task {self.task.name!r} has only "
                f"{len(pool)} in its pool"
            )
        if k == 0:
            return []
        if selection == "first":
            return pool[:k]
        if selection == "random":
            return rng.sample(pool, k)
        if selection == "balanced":
            by_label: dict[str, list[Example]] = {}
            for example in rng.sample(pool, len(pool)):
                by_label.setdefault(example.target, []).append(example)
            labels = rng.sample(sorted(by_label), len(by_label))
            chosen: list[Example] = []
            while len(chosen) < k:
                for label in labels:
                    if by_label[label] and len(chosen) < k:
                        chosen.append(by_label[label].pop())
            return chosen
        if self._bm25 is None:
            self._bm25 = BM25([example.input for example in pool])
        scores = self._bm25.scores(query.input)
        # Ties (common in a small pool) are broken at random, so draws still differ.
        jitter = [rng.random() for _ in pool]
        ranked = sorted(range(len(pool)), key=lambda i: (-scores[i], jitter[i]))
        return [pool[i] for i in ranked[:k]]

    def order(
        self, demonstrations: list[Example], ordering: Ordering, rng: random.Random
    ) -> list[Example]:
        if ordering == "random":
            return rng.sample(demonstrations, len(demonstrations))
        if ordering == "similar-last":
            return list(reversed(demonstrations))
        return demonstrations

    def build(
        self,
        query: Example,
        k: int,
        *,
        selection: Selection = "random",
        ordering: Ordering = "as-selected",
        rng: random.Random,
    ) -> Prompt:
        chosen = self.order(self.select(query, k, selection, rng), ordering, rng)
        return self.render(query, chosen)

    def render(self, query: Example, demonstrations: Sequence[Example]) -> Prompt:
        parts = [self.format.demonstration(example) for example in demonstrations]
        parts.append(self.format.text(query))
        description = (
            self.task.instruction + self.format.description_suffix if self.task.instruction else ""
        )
        context = description + self.format.fewshot_delimiter.join(parts)
        return Prompt(context, tuple(demonstrations), query)
