"""A causal language model, a tokenizer and text to train them on, shared by the LM projects.

Load a model by Hub id or directory (:func:`load_model`, :func:`load_tokenizer`), or build one with
random weights from a named preset (:func:`build_model`); train a byte-level BPE
(:func:`train_tokenizer`) on the embedded standard-library corpus or your own text
(:func:`load_corpus`); cut it into token blocks (:class:`TokenBlockDataset`). The ``pretrain``
command (:mod:`lm.pretrain`) ties them together.
"""

from lm.corpus import Corpus, load_corpus, split_documents, stdlib_docstrings
from lm.data import TokenBlockDataset, tokenize_documents
from lm.loading import (
    DEFAULT_PRETRAINED_DIR,
    LoadedModel,
    ModelLoadError,
    load_model,
    load_model_spec,
    load_tokenizer,
    resolve_model_spec,
)
from lm.presets import PRESETS, ModelPreset, build_model, count_parameters, get_preset, preset_names
from lm.tokenizer import EOS_TOKEN, PAD_TOKEN, train_tokenizer
from lm.training import causal_lm_loss, evaluate_loss, perplexity, train_step

__all__ = [
    "DEFAULT_PRETRAINED_DIR",
    "LoadedModel",
    "load_model_spec",
    "resolve_model_spec",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "PRESETS",
    "Corpus",
    "ModelLoadError",
    "ModelPreset",
    "TokenBlockDataset",
    "build_model",
    "causal_lm_loss",
    "count_parameters",
    "evaluate_loss",
    "get_preset",
    "load_corpus",
    "load_model",
    "load_tokenizer",
    "perplexity",
    "preset_names",
    "split_documents",
    "stdlib_docstrings",
    "tokenize_documents",
    "train_step",
    "train_tokenizer",
]
