"""Preference and prompt datasets: JSONL, CSV or a saved ``datasets`` directory.

Three row formats are understood, detected per row from its keys:

* explicit pairs: ``{"prompt", "chosen", "rejected"}``;
* Anthropic hh-rlhf style: ``{"chosen", "rejected"}`` full dialogues that share the prompt
  up to the last ``"\\n\\nAssistant:"``;
* rankings: ``{"prompt", "responses"}`` best first (or with ``"scores"``, higher better),
  expanded into every ordered pair;
* the article's four-field comparisons: ``{"input", "summary_1", "summary_2", "preference"}``,
  ``preference`` 1 or 2 naming the summary the labeller preferred (:func:`comparison_to_pair`).

Every problem raises :class:`PreferenceDataError` naming the file and row.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ml_core import atomic_output

HH_ASSISTANT = "\n\nAssistant:"


class PreferenceDataError(ValueError):
    """A data file, or one of its rows, cannot be used."""


@dataclasses.dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def ranking_to_pairs(
    prompt: str, responses: Sequence[str], scores: Sequence[float] | None = None
) -> list[PreferencePair]:
    """All pairs of a ranking: ``responses`` best first, or ordered by ``scores``.

    K responses give K*(K-1)/2 pairs; equal scores give no pair.
    """
    if scores is not None and len(scores) != len(responses):
        raise ValueError(f"{len(responses)} responses but {len(scores)} scores.")
    ranked = list(responses)
    values = list(scores) if scores is not None else [-float(i) for i in range(len(ranked))]
    pairs = []
    for i, j in itertools.combinations(range(len(ranked)), 2):
        if values[i] == values[j]:
            continue
        better, worse = (i, j) if values[i] > values[j] else (j, i)
        pairs.append(PreferencePair(prompt, ranked[better], ranked[worse]))
    return pairs


def split_hh_dialogue(chosen: str, rejected: str) -> PreferencePair:
    """Split hh-rlhf dialogues into the shared prompt (through the last ``Assistant:``) and the two
    final answers."""
    cut = chosen.rfind(HH_ASSISTANT)
    if cut < 0:
        raise ValueError(f"'chosen' has no {HH_ASSISTANT.strip()!r} turn.")
    prompt = chosen[: cut + len(HH_ASSISTANT)]
    if not rejected.startswith(prompt):
        raise ValueError(
            "'chosen' and 'rejected' do not share the dialogue before the last answer."
        )
    return PreferencePair(prompt, chosen[len(prompt) :], rejected[len(prompt) :])


COMPARISON_FIELDS = ("input", "summary_1", "summary_2", "preference")


def comparison_key(key: str) -> str:
    """A column name in the canonical spelling of the four-field format: case, spaces, hyphens and
    the separator before the number do not matter (``Summary 1``, ``summary-1``, ``summary1`` ->
    ``summary_1``)."""
    name = key.strip().lower().replace(" ", "_").replace("-", "_")
    for number in ("1", "2"):
        if name in (f"summary{number}", f"summary__{number}"):
            return f"summary_{number}"
    return name


def _preference(value: Any) -> int:
    """1 or 2, from a number or a CSV cell; anything else is an error."""
    choice: Any = value
    if isinstance(value, str):
        choice = value.strip()
        choice = int(choice) if choice in ("1", "2") else choice
    elif isinstance(value, float) and value in (1.0, 2.0):
        choice = int(value)
    if isinstance(choice, bool) or choice not in (1, 2):
        raise ValueError(f"'preference' must be 1 or 2 (the preferred summary), got {value!r}")
    return int(choice)


def comparison_to_pair(row: dict[str, Any]) -> PreferencePair:
    """The pair of one four-field row (input, summary 1, summary 2, preference): prompt = input,
    chosen = the preferred summary, rejected = the other one."""
    # A CSV row with more cells than columns keeps the extras under the key None.
    fields = {comparison_key(key): value for key, value in row.items() if isinstance(key, str)}
    for name in COMPARISON_FIELDS:
        if fields.get(name) is None:
            raise ValueError(f"missing {name!r}")
    texts = {name: _text(fields, name) for name in COMPARISON_FIELDS[:3]}
    for name, value in (*texts.items(), ("preference", fields["preference"])):
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"empty {name!r}")
    preferred = _preference(fields["preference"])
    if texts["summary_1"] == texts["summary_2"]:
        raise ValueError("'summary_1' and 'summary_2' are identical")
    better, worse = ("summary_1", "summary_2") if preferred == 1 else ("summary_2", "summary_1")
    return PreferencePair(texts["input"], texts[better], texts[worse])


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        raise ValueError(f"missing {key!r}")
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be text, got {type(value).__name__}")
    return value


def row_to_pairs(row: dict[str, Any]) -> list[PreferencePair]:
    """The preference pairs of one row in any supported format."""
    if "responses" in row:
        responses = row["responses"]
        if isinstance(responses, str):  # CSV: a JSON list in a cell
            responses = json.loads(responses)
        if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
            raise ValueError("'responses' must be a list of texts")
        if len(responses) < 2:
            raise ValueError("'responses' needs at least 2 entries")
        scores = row.get("scores")
        if isinstance(scores, str):
            scores = json.loads(scores)
        if scores is not None and not (
            isinstance(scores, list) and all(isinstance(s, (int, float)) for s in scores)
        ):
            raise ValueError("'scores' must be a list of numbers")
        return ranking_to_pairs(_text(row, "prompt"), responses, scores)
    if {comparison_key(key) for key in row if isinstance(key, str)} & {"summary_1", "summary_2"}:
        return [comparison_to_pair(row)]
    if "prompt" in row and row["prompt"] not in (None, ""):
        pair = PreferencePair(_text(row, "prompt"), _text(row, "chosen"), _text(row, "rejected"))
    else:
        pair = split_hh_dialogue(_text(row, "chosen"), _text(row, "rejected"))
    if pair.chosen == pair.rejected:
        raise ValueError("'chosen' and 'rejected' are identical")
    return [pair]


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl``/``.json`` lines file, a ``.csv`` file or a ``datasets`` directory."""
    source = Path(path)
    if not source.exists():
        raise PreferenceDataError(f"{source}: no such file or directory.")
    if source.is_dir():
        return _dataset_rows(source)
    suffix = source.suffix.lower()
    if suffix == ".csv":
        with open(source, newline="", encoding="utf-8") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    if suffix in (".jsonl", ".json"):
        rows = []
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise PreferenceDataError(f"{source} row {number}: invalid JSON ({error}).")
            if not isinstance(row, dict):
                raise PreferenceDataError(f"{source} row {number}: expected a JSON object.")
            rows.append(row)
        return rows
    raise PreferenceDataError(
        f"{source}: unsupported file type {suffix!r}; use .jsonl, .csv or a datasets directory."
    )


def _dataset_rows(directory: Path) -> list[dict[str, Any]]:
    import datasets  # only when a saved dataset is read: importing it is slow

    try:
        loaded = datasets.load_from_disk(str(directory))
    except Exception as error:  # datasets raises several types for a bad directory
        raise PreferenceDataError(f"{directory}: not a saved datasets directory ({error}).")
    if isinstance(loaded, datasets.DatasetDict):
        split = "train" if "train" in loaded else sorted(loaded)[0]
        loaded = loaded[split]
    return [dict(row) for row in loaded]


def load_preferences(path: str | os.PathLike[str]) -> list[PreferencePair]:
    """Every preference pair in ``path``; a bad row raises :class:`PreferenceDataError` naming
    it."""
    pairs: list[PreferencePair] = []
    rows = read_rows(path)
    for number, row in enumerate(rows, 1):
        try:
            pairs.extend(row_to_pairs(row))
        except (ValueError, TypeError) as error:
            raise PreferenceDataError(f"{path} row {number}: {error}.") from None
    if not pairs:
        raise PreferenceDataError(f"{path}: no preference pairs.")
    return pairs


def load_prompts(path: str | os.PathLike[str]) -> list[str]:
    """The ``prompt`` column of a prompt-only dataset (JSONL, CSV or datasets)."""
    prompts = []
    for number, row in enumerate(read_rows(path), 1):
        try:
            prompts.append(_text(row, "prompt"))
        except ValueError as error:
            raise PreferenceDataError(f"{path} row {number}: {error}.") from None
        if not prompts[-1].strip():
            raise PreferenceDataError(f"{path} row {number}: empty 'prompt'.")
    if not prompts:
        raise PreferenceDataError(f"{path}: no prompts.")
    return prompts


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` as JSON lines, atomically."""
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
