"""Tasks as data: an instruction, a demonstration pool, queries and the answer options.

A task file is JSONL or CSV.

JSONL: one object a line with a ``kind``: one ``meta`` line (``name``, optional ``instruction``,
optional ``options`` — the label words or answer choices; without them the task is scored by
generation only), then ``demo`` lines and ``query`` lines with ``input`` and ``target``.

CSV: a header with the columns ``kind,input,target`` (and optionally ``instruction``, ``options``,
the latter ``|``-separated): ``meta`` rows carry the instruction and options.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any


class TaskError(ValueError):
    """A task file or a request on a task that cannot be used (reported without a traceback)."""


@dataclasses.dataclass(frozen=True)
class Example:
    """One demonstration or query."""

    input: str
    target: str


@dataclasses.dataclass(frozen=True)
class Task:
    """A few-shot task."""

    name: str
    instruction: str
    options: tuple[str, ...]
    demonstrations: tuple[Example, ...]
    queries: tuple[Example, ...]

    def __post_init__(self) -> None:
        if not self.queries:
            raise TaskError(f"task {self.name!r} has no queries (lines with kind 'query')")
        if self.options:
            if len(set(self.options)) != len(self.options):
                raise TaskError(f"task {self.name!r}: options repeat: {list(self.options)}")
            for example in self.demonstrations + self.queries:
                if example.target not in self.options:
                    raise TaskError(
                        f"task {self.name!r}: target {example.target!r} of input "
                        f"{example.input!r} is not one of the options {list(self.options)}"
                    )

    def to_records(self) -> list[dict[str, Any]]:
        meta: dict[str, Any] = {"kind": "meta", "name": self.name}
        meta["instruction"] = self.instruction
        meta["options"] = list(self.options)
        rows = [meta]
        rows += [{"kind": "demo", **dataclasses.asdict(e)} for e in self.demonstrations]
        rows += [{"kind": "query", **dataclasses.asdict(e)} for e in self.queries]
        return rows


def _example(record: dict[str, Any], where: str) -> Example:
    missing = [key for key in ("input", "target") if not isinstance(record.get(key), str)]
    if missing:
        raise TaskError(f"{where}: missing or non-string field(s) {', '.join(missing)}")
    return Example(record["input"], record["target"])


def task_from_records(records: list[tuple[str, dict[str, Any]]], default_name: str) -> Task:
    """Build a task from ``(where, record)`` pairs (``where`` names the line for errors)."""
    name, instruction, options = default_name, "", ()
    demos: list[Example] = []
    queries: list[Example] = []
    for where, record in records:
        kind = record.get("kind")
        if kind == "meta":
            name = str(record.get("name") or name)
            instruction = str(record.get("instruction") or "")
            raw = record.get("options") or []
            if isinstance(raw, str):
                raw = [part for part in raw.split("|") if part]
            if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
                raise TaskError(f"{where}: options must be a list of strings")
            options = tuple(raw)
        elif kind == "demo":
            demos.append(_example(record, where))
        elif kind == "query":
            queries.append(_example(record, where))
        else:
            raise TaskError(
                f"{where}: field 'kind' must be one of meta, demo, query (got {kind!r})"
            )
    return Task(name, instruction, options, tuple(demos), tuple(queries))


def load_task(path: Path) -> Task:
    """Read a task from a ``.jsonl`` or ``.csv`` file; any problem raises :class:`TaskError`."""
    if not path.is_file():
        raise TaskError(f"task file {path} does not exist")
    records: list[tuple[str, dict[str, Any]]] = []
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("kind", "input", "target") if c not in (reader.fieldnames or [])]
            if missing:
                raise TaskError(f"{path}: CSV header lacks the column(s) {', '.join(missing)}")
            for number, row in enumerate(reader, start=2):
                records.append((f"{path}:{number}", {k: v for k, v in row.items() if k}))
    elif path.suffix in (".jsonl", ".json"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise TaskError(f"{path}:{number}: not JSON: {error}") from None
            if not isinstance(record, dict):
                raise TaskError(f"{path}:{number}: a line must be a JSON object")
            records.append((f"{path}:{number}", record))
    else:
        raise TaskError(f"{path}: a task file is .jsonl or .csv")
    return task_from_records(records, path.stem)


def write_task(task: Task, path: Path) -> None:
    """Write ``task`` as JSONL (atomically)."""
    from ml_core import atomic_output

    with atomic_output(path) as temporary:
        temporary.write_text(
            "".join(json.dumps(record) + "\n" for record in task.to_records()), encoding="utf-8"
        )
