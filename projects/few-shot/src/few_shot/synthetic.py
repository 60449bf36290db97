"""A synthetic pretraining mixture that induces in-context learning, and the held-out tasks.

Every training sequence is a run of demonstrations of a *freshly sampled* mapping: invented-word
translation (``wug = red ;``), label-word classification with natural, inverted or arbitrary label
words (``good nice = negative ;``) and copying (``3 7 1 = 3 7 1 ;``). No mapping is fixed, so the
only way to predict an answer is to read it from the context. The evaluation languages draw their
words from one (invented word, English word) pair in four; training draws from all pairs alike, so
the model learns no prior for or against any pair (an earlier mixture that left the evaluation
pairs out taught the model that they never occur: zero-shot fell below chance), and a whole
evaluation language is never a training mapping, so its accuracy can only come from the prompt.

The vocabulary is word level (one token per word), built by :func:`build_tokenizer`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

UNK = "<unk>"
EOS = "<|endoftext|>"
PAD = "<|pad|>"

_CONSONANTS = "bdfgklmnprstvwz"
_VOWELS = "aeiou"

ENGLISH = (
    "red blue green black white brown pink gray gold cat dog cow fish bird frog horse mouse "
    "goat duck bear wolf tree house car boat road hill river lake moon sun star rain snow "
    "bread milk egg apple salt tea book door chair table shoe hat cup"
).split()
POSITIVE = "good great nice happy lovely fine superb wonderful excellent pleasant".split()
NEGATIVE = "bad awful poor sad terrible nasty horrible dreadful broken boring".split()
NATURAL_LABELS = ("positive", "negative")
OTHER_LABELS = "yes no true false alpha beta up down left right hot cold".split()
NUMBERS = [str(n) for n in range(10)]
STRUCTURE = "= ; : ? . ,".split()
INSTRUCTION_WORDS = (
    "translate the words from the invented language into english classify each review as "
    "or answer do odd numbers in this list add up to an even number copy sequence"
).split()
INSTRUCTIONS = (
    "translate the words from the invented language into english :",
    "classify each review as positive or negative :",
    "answer yes or no : do the odd numbers in this list add up to an even number ?",
    "copy the sequence :",
)


def invented_words(count: int = 300, seed: int = 1234) -> list[str]:
    """``count`` distinct pronounceable invented words (CV-CV or CV-CVC), deterministic in
    ``seed``."""
    rng = random.Random(seed)
    taken = set(ENGLISH) | set(POSITIVE) | set(NEGATIVE) | set(OTHER_LABELS)
    taken |= set(INSTRUCTION_WORDS) | set(NATURAL_LABELS)
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(2))
        if rng.random() < 0.5:
            word += rng.choice(_CONSONANTS)
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


INVENTED = invented_words()


def vocabulary() -> list[str]:
    """Every word the synthetic tokenizer knows, special tokens first."""
    words = [EOS, PAD, UNK] + STRUCTURE + NUMBERS
    for group in (
        ENGLISH,
        POSITIVE,
        NEGATIVE,
        list(NATURAL_LABELS),
        OTHER_LABELS,
        INSTRUCTION_WORDS,
        INVENTED,
    ):
        words.extend(word for word in group if word not in words)
    return words


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :func:`vocabulary`: words and punctuation are single tokens,
    anything else is ``<unk>``; decoding joins tokens with spaces."""
    vocab = {word: index for index, word in enumerate(vocabulary())}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    # transformers leaves this constructor unannotated; the cast states what it returns.
    factory = cast(Callable[..., PreTrainedTokenizerFast], PreTrainedTokenizerFast)
    return factory(
        tokenizer_object=tokenizer,
        bos_token=EOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
    )


def held_out(source: str, target: str) -> bool:
    """Whether the pair (``source`` -> ``target``) is reserved for evaluation (one in four)."""
    digest = hashlib.sha256(f"{source}->{target}".encode()).digest()
    return digest[0] % 4 == 0


def _sample_mapping(rng: random.Random, size: int, *, evaluation: bool) -> dict[str, str]:
    """``size`` invented words mapped to distinct English words: any pairs for training, only held-
    out pairs when ``evaluation``."""
    mapping: dict[str, str] = {}
    targets = rng.sample(ENGLISH, len(ENGLISH))
    sources = rng.sample(INVENTED, len(INVENTED))
    for target in targets:
        for source in sources:
            if source not in mapping and (held_out(source, target) or not evaluation):
                mapping[source] = target
                break
        if len(mapping) == size:
            break
    return mapping


def _label_pair(rng: random.Random) -> tuple[str, str]:
    """(label for positive, label for negative): natural, inverted or arbitrary words."""
    choice = rng.random()
    if choice < 1 / 3:
        return NATURAL_LABELS
    if choice < 2 / 3:
        return NATURAL_LABELS[1], NATURAL_LABELS[0]
    first, second = rng.sample(OTHER_LABELS + INVENTED[:40], 2)
    return first, second


def _review(rng: random.Random, positive: bool) -> str:
    words = POSITIVE if positive else NEGATIVE
    return " ".join(rng.sample(words, rng.randint(1, 3)))


def _episode(rng: random.Random) -> list[tuple[str, str]]:
    """One episode: a list of (input, output) demonstrations of a fresh mapping."""
    kind = rng.random()
    count = rng.randint(6, 24)
    if kind < 0.55:
        mapping = _sample_mapping(rng, rng.randint(2, 8), evaluation=False)
        keys = list(mapping)
        return [(key, mapping[key]) for key in (rng.choice(keys) for _ in range(count))]
    if kind < 0.85:
        labels = _label_pair(rng)
        pairs = []
        for _ in range(count):
            positive = rng.random() < 0.5
            pairs.append((_review(rng, positive), labels[0] if positive else labels[1]))
        return pairs
    pairs = []
    for _ in range(count):
        sequence = " ".join(rng.choice(NUMBERS + ENGLISH[:9]) for _ in range(rng.randint(1, 4)))
        pairs.append((sequence, sequence))
    return pairs


def episode_text(rng: random.Random) -> str:
    """A training sequence: an optional instruction, then demonstrations ``x = y ;``."""
    pairs = _episode(rng)
    prefix = rng.choice(INSTRUCTIONS) + " " if rng.random() < 0.3 else ""
    return prefix + " ".join(f"{x} = {y} ;" for x, y in pairs)


def training_texts(seed: int) -> Iterator[str]:
    """An endless stream of training sequences, deterministic in ``seed``."""
    rng = random.Random(seed)
    while True:
        yield episode_text(rng)


# --- the evaluation tasks (written as JSONL task files) ----------------------------------


def invented_language_task(seed: int, size: int = 4, repeats: int = 6) -> dict[str, Any]:
    """A held-out invented language: ``size`` words whose translations were never seen together in
    training.

    The pool repeats each word ``repeats`` times; the queries ask each word ``repeats`` times.
    """
    rng = random.Random(seed)
    mapping = _sample_mapping(rng, size, evaluation=True)
    pool = [{"input": s, "target": t} for s, t in mapping.items() for _ in range(repeats)]
    queries = [{"input": s, "target": t} for s, t in mapping.items() for _ in range(repeats)]
    rng.shuffle(pool)
    rng.shuffle(queries)
    return {
        "name": f"invented-language-{seed}",
        "instruction": INSTRUCTIONS[0],
        "options": sorted(mapping.values()),
        "demonstrations": pool,
        "queries": queries,
    }


def inverted_sentiment_task(seed: int, pool_size: int = 24, queries: int = 40) -> dict[str, Any]:
    """The article's inverted-label review task: positive reviews are labelled ``negative``."""
    rng = random.Random(seed)

    def record() -> dict[str, str]:
        positive = rng.random() < 0.5
        return {"input": _review(rng, positive), "target": "negative" if positive else "positive"}

    return {
        "name": "inverted-sentiment",
        "instruction": INSTRUCTIONS[1],
        "options": list(NATURAL_LABELS),
        "demonstrations": [record() for _ in range(pool_size)],
        "queries": [record() for _ in range(queries)],
    }


def odd_sum_task(seed: int, pool_size: int = 24, queries: int = 40) -> dict[str, Any]:
    """The article's failure case: do the odd numbers in this list add up to an even number?

    A two-step problem (pick the odd numbers, then the parity of their sum).
    """
    rng = random.Random(seed)

    def record() -> dict[str, str]:
        numbers = [rng.randint(1, 9) for _ in range(rng.randint(3, 5))]
        odd_sum = sum(n for n in numbers if n % 2)
        return {
            "input": " ".join(map(str, numbers)),
            "target": "yes" if odd_sum % 2 == 0 else "no",
        }

    return {
        "name": "odd-sum",
        "instruction": INSTRUCTIONS[2],
        "options": ["yes", "no"],
        "demonstrations": [record() for _ in range(pool_size)],
        "queries": [record() for _ in range(queries)],
    }


def task_records(task: dict[str, Any]) -> list[dict[str, Any]]:
    """A task dict as JSONL records: a ``meta`` line, then ``demo`` and ``query`` lines."""
    meta = {
        "kind": "meta",
        "name": task["name"],
        "instruction": task["instruction"],
        "options": task["options"],
    }
    demos = [{"kind": "demo", **record} for record in task["demonstrations"]]
    queries = [{"kind": "query", **record} for record in task["queries"]]
    return [meta, *demos, *queries]


def check_tokens(words: Sequence[str]) -> list[str]:
    """The words of ``words`` the synthetic vocabulary does not know."""
    known = set(vocabulary())
    return [word for word in words if word not in known]
