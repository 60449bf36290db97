"""Text to train on: the Python standard library's docstrings, text files, or a saved dataset.

The default corpus needs no download and no committed data: every machine that runs this code has
the standard library it was harvested from. Its content depends on the Python version (3.11 here),
which run metadata records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import io
import os
import pkgutil
import random
import re
import sys
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

STDLIB_SOURCE = "stdlib"
DEFAULT_STDLIB_MAX_CHARS = 2_000_000
# Modules whose import opens a browser, prints, needs a display, runs a program, or drags in a
# huge test suite. Matched against every dotted component, so "tkinter" also skips "tkinter.ttk".
SKIPPED_MODULES = frozenset(
    {
        "antigravity",
        "this",
        "tkinter",
        "turtle",
        "turtledemo",
        "idlelib",
        "test",
        "tests",
        "idle_test",
        "lib2to3",
        "distutils",
        "ensurepip",
        "pydoc_data",
        "readline",
        "rlcompleter",
        "encodings",
        "msilib",
        "winreg",
        "winsound",
        "msvcrt",
        "nt",
    }
)
MIN_DOC_CHARS = 40
_SAVED_DATASET_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Documents split into training and validation text."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    source: str

    def stats(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "train_documents": len(self.train),
            "validation_documents": len(self.validation),
            "train_chars": sum(map(len, self.train)),
            "validation_chars": sum(map(len, self.validation)),
        }


def _skipped(module_name: str) -> bool:
    return any(part.startswith("_") or part in SKIPPED_MODULES for part in module_name.split("."))


def _quiet_import(module_name: str) -> ModuleType | None:
    """Import a module with its warnings and output swallowed; None if it cannot be imported."""
    sink = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(module_name)
        except (Exception, SystemExit):  # platform-specific or broken optional modules
            return None


def _stdlib_modules() -> Iterator[ModuleType]:
    """Standard library modules and their submodules, in sorted order, skipping unsafe ones."""
    for name in sorted(sys.stdlib_module_names):
        if _skipped(name):
            continue
        module = _quiet_import(name)
        if module is None:
            continue
        yield module
        yield from _submodules(module)


def _submodules(package: ModuleType) -> Iterator[ModuleType]:
    path = getattr(package, "__path__", None)
    if path is None:
        return
    infos = sorted(pkgutil.iter_modules(path, prefix=package.__name__ + "."), key=lambda i: i.name)
    for info in infos:
        if _skipped(info.name):
            continue
        module = _quiet_import(info.name)
        if module is not None:
            yield module
            yield from _submodules(module)


def _raw_docstrings(module: ModuleType) -> Iterator[str | None]:
    yield module.__doc__
    for _, member in sorted(vars(module).items()):
        # Only objects defined here: re-exports would repeat another module's text.
        if getattr(member, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(member):
            yield member.__doc__
            for _, attribute in sorted(vars(member).items()):
                if inspect.isroutine(attribute) or isinstance(attribute, property):
                    yield attribute.__doc__
        elif inspect.isroutine(member):
            yield member.__doc__


def clean_text(text: str) -> str:
    """Dedent, strip trailing spaces and collapse runs of blank lines."""
    text = inspect.cleandoc(text.replace("\r\n", "\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@lru_cache(maxsize=8)
def _stdlib_docstrings(max_chars: int, min_doc_chars: int) -> tuple[str, ...]:
    documents: list[str] = []
    seen: set[str] = set()
    total = 0
    for module in _stdlib_modules():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. typing.io warns when its members are read
            raws = list(_raw_docstrings(module))
        for raw in raws:
            if not isinstance(raw, str):
                continue
            text = clean_text(raw)
            if len(text) < min_doc_chars or text in seen:
                continue
            if total + len(text) > max_chars:
                return tuple(documents)
            seen.add(text)
            documents.append(text)
            total += len(text)
    return tuple(documents)


def stdlib_docstrings(
    max_chars: int = DEFAULT_STDLIB_MAX_CHARS, *, min_doc_chars: int = MIN_DOC_CHARS
) -> list[str]:
    """Cleaned, deduplicated docstrings of the standard library, in a deterministic order.

    Modules are visited in sorted order and harvesting stops before
    ``max_chars`` would be exceeded, so a small cap is also fast.
    Modules with side effects on import are skipped.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}.")
    return list(_stdlib_docstrings(max_chars, min_doc_chars))


def read_text_files(path: str | os.PathLike[str]) -> list[str]:
    """Read a ``.txt`` file, or every ``.txt`` file under a directory (sorted), as documents."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Corpus path {root} does not exist.")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.txt") if p.is_file())
    if not files:
        raise ValueError(f"Corpus directory {root} contains no .txt files.")
    documents = [clean_text(file.read_text(encoding="utf-8")) for file in files]
    documents = [document for document in documents if document]
    if not documents:
        raise ValueError(f"Corpus path {root} holds only empty text files.")
    return documents


def is_saved_dataset(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory written by ``datasets``' ``save_to_disk``."""
    root = Path(path)
    return root.is_dir() and any((root / marker).is_file() for marker in _SAVED_DATASET_MARKERS)


def _column(dataset: Any, text_column: str, where: str) -> list[str]:
    columns = list(dataset.column_names)
    if text_column not in columns:
        raise ValueError(
            f"{where} has no {text_column!r} column; its columns are: {', '.join(columns)}."
        )
    texts = [clean_text(text) for text in dataset[text_column] if isinstance(text, str)]
    return [text for text in texts if text]


def load_saved_dataset(
    path: str | os.PathLike[str], *, text_column: str = "text"
) -> dict[str, list[str]]:
    """Texts of a ``save_to_disk`` dataset: ``{"train": [...]}`` or one entry per split."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Dataset path {root} does not exist.")
    # Imported here: pyarrow and pandas make `import datasets` slow, and most users of this
    # library (a serving process, the default corpus) never read a saved dataset.
    import datasets

    loaded = datasets.load_from_disk(str(root))
    if isinstance(loaded, datasets.DatasetDict):
        splits = {
            name: _column(split, text_column, f"Split {name!r} of {root}")
            for name, split in loaded.items()
        }
    else:
        splits = {"train": _column(loaded, text_column, f"Dataset {root}")}
    if not any(splits.values()):
        raise ValueError(f"Dataset {root} has no non-empty {text_column!r} texts.")
    return splits


def split_documents(
    documents: Sequence[str], *, validation_fraction: float = 0.05, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split documents into non-empty (train, validation) lists, deterministically.

    A seeded shuffle picks the validation documents; both parts keep the original order. A single
    document is cut at a line break near the split point instead.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
    if not documents:
        raise ValueError("Cannot split an empty corpus.")
    if len(documents) == 1:
        return _split_text(documents[0], validation_fraction)
    indices = list(range(len(documents)))
    random.Random(seed).shuffle(indices)
    count = min(len(documents) - 1, max(1, round(len(documents) * validation_fraction)))
    validation_indices = set(indices[:count])
    train = [doc for i, doc in enumerate(documents) if i not in validation_indices]
    validation = [doc for i, doc in enumerate(documents) if i in validation_indices]
    return train, validation


def _split_text(text: str, validation_fraction: float) -> tuple[list[str], list[str]]:
    if len(text) < 2:
        raise ValueError(
            "The corpus is a single document too short to split into train/validation."
        )
    cut = round(len(text) * (1.0 - validation_fraction))
    newline = text.rfind("\n", 1, cut)
    cut = newline if newline > len(text) // 2 else max(1, min(cut, len(text) - 1))
    return [text[:cut].strip() or text[:cut]], [text[cut:].strip() or text[cut:]]


def _cap(documents: list[str], max_chars: int | None) -> list[str]:
    if max_chars is None:
        return documents
    kept: list[str] = []
    total = 0
    for document in documents:
        if total + len(document) > max_chars:
            break
        kept.append(document)
        total += len(document)
    if not kept:
        raise ValueError(f"max_chars={max_chars} is smaller than the first document.")
    return kept


def load_corpus(
    source: str | os.PathLike[str] | None = None,
    *,
    max_chars: int | None = None,
    validation_fraction: float = 0.05,
    seed: int = 0,
    text_column: str = "text",
) -> Corpus:
    """Load and split a corpus.

    ``source`` is ``None`` or ``"stdlib"`` for the embedded standard- library docstrings (capped at
    ``max_chars``, default :data:`DEFAULT_STDLIB_MAX_CHARS`), a ``.txt`` file or directory of them,
    or a directory written by ``datasets``' ``save_to_disk``. A saved ``DatasetDict`` with a
    ``validation`` (or ``test``) split keeps its own split.
    """
    if source is None or os.fspath(source) == STDLIB_SOURCE:
        documents = stdlib_docstrings(max_chars or DEFAULT_STDLIB_MAX_CHARS)
        if not documents:
            raise ValueError("No standard-library docstrings were found.")
        train, validation = split_documents(
            documents, validation_fraction=validation_fraction, seed=seed
        )
        return Corpus(tuple(train), tuple(validation), STDLIB_SOURCE)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Corpus path {path} does not exist; pass a .txt file, a directory of .txt files, "
            f"a saved dataset directory, or {STDLIB_SOURCE!r}."
        )
    if is_saved_dataset(path):
        splits = load_saved_dataset(path, text_column=text_column)
        held_out = splits.get("validation") or splits.get("test")
        if splits.get("train") and held_out:
            return Corpus(tuple(_cap(splits["train"], max_chars)), tuple(held_out), os.fspath(path))
        documents = [text for name in sorted(splits) for text in splits[name]]
    else:
        documents = read_text_files(path)
    train, validation = split_documents(
        _cap(documents, max_chars), validation_fraction=validation_fraction, seed=seed
    )
    return Corpus(tuple(train), tuple(validation), os.fspath(path))
