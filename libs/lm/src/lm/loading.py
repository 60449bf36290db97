"""Load a causal language model or tokenizer from a local directory or the Hugging Face Hub."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm.presets import build_model, name_causal_lm_loss, preset_names

T = TypeVar("T")


class ModelLoadError(RuntimeError):
    """Neither a local directory nor a Hub id gave a loadable model or tokenizer."""


def _looks_like_path(name_or_path: str) -> bool:
    # Hub ids are "name" or "namespace/name"; anything else can only mean a file system path.
    # "runs/missing" where ./runs exists is a path too: asking the Hub would only wait and fail.
    namespace, slash, _ = name_or_path.partition("/")
    return (
        name_or_path.startswith((".", "/", "~"))
        or name_or_path.count("/") > 1
        or "\\" in name_or_path
        or (bool(slash) and Path(namespace).is_dir())
    )


def _load(what: str, name_or_path: str | os.PathLike[str], loader: Callable[[str], T]) -> T:
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        try:
            return loader(str(path))
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"Could not load a {what} from the local directory {path}: {error}"
            ) from error
    if path.exists():
        raise ModelLoadError(
            f"{path} is a file; a {what} is loaded from a save_pretrained directory or a Hub id."
        )
    if _looks_like_path(text):
        raise ModelLoadError(
            f"Could not load a {what} from {text!r}: the local directory {path.absolute()} "
            "does not exist (and the name is not a Hugging Face Hub id)."
        )
    try:
        return loader(text)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"Could not load a {what} from {text!r}. Tried: (1) a local directory: "
            f"{path.absolute()} does not exist; (2) the Hugging Face Hub: the hub is unreachable "
            f"(offline, or HF_HUB_OFFLINE is set) or the id is unknown or private. "
            f"Hub error: {error}"
        ) from error


def load_model(name_or_path: str | os.PathLike[str]) -> PreTrainedModel:
    """Load a causal language model from a ``save_pretrained`` directory or a Hub id.

    Raises :class:`ModelLoadError` that says what was tried when neither works.
    """

    def loader(source: str) -> PreTrainedModel:
        model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(source)
        return name_causal_lm_loss(model)

    return _load("causal language model", name_or_path, loader)


def load_tokenizer(name_or_path: str | os.PathLike[str]) -> PreTrainedTokenizerBase:
    """Load a tokenizer from a ``save_pretrained`` directory or a Hub id.

    Raises :class:`ModelLoadError` that says what was tried when neither works.
    """

    def loader(source: str) -> PreTrainedTokenizerBase:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(source)
        return tokenizer

    return _load("tokenizer", name_or_path, loader)


# Where `./pants run libs/lm:pretrain -- --out runs/lm-tiny` puts the pretrained tiny model.
DEFAULT_PRETRAINED_DIR = Path("runs/lm-tiny")
DEFAULT_PRESET = "tiny"


@dataclasses.dataclass
class LoadedModel:
    """A model, its tokenizer, and where they came from (``preset:tiny``, a directory or a Hub
    id)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str


def resolve_model_spec(spec: str | os.PathLike[str] | None) -> str:
    """What a ``--model`` value means: ``None`` is the pretrained ``runs/lm- tiny`` when it exists,
    else the ``tiny`` preset; anything else is returned as given."""
    if spec is None:
        return (
            str(DEFAULT_PRETRAINED_DIR)
            if (DEFAULT_PRETRAINED_DIR / "config.json").exists()
            else DEFAULT_PRESET
        )
    return os.fspath(spec)


def load_model_spec(
    spec: str | os.PathLike[str] | None,
    *,
    preset_tokenizer: Callable[[], PreTrainedTokenizerBase],
    seed: int = 0,
) -> LoadedModel:
    """Load what a ``--model`` value names, in this order: a ``save_pretrained`` directory if one
    exists at that path; else a preset name (random weights, seeded, with ``preset_tokenizer()``);
    else a Hub id. ``None`` means :func:`resolve_model_spec`'s default.

    A missing directory or unknown id raises :class:`ModelLoadError` saying what was tried. The
    tokenizer always has a pad token.
    """
    name = resolve_model_spec(spec)
    if name in preset_names() and not Path(name).is_dir():
        tokenizer = preset_tokenizer()
        model = build_model(name, tokenizer=tokenizer, seed=seed)
        source = f"preset:{name}"
    else:
        model = load_model(name)
        tokenizer = load_tokenizer(name)
        source = name
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.train(False)
    return LoadedModel(model, tokenizer, source)
