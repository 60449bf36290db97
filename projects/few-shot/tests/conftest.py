"""A tiny real GPT-2 with the synthetic word-level tokenizer, saved as a model directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from few_shot import synthetic
from few_shot.prompts import FORMAT_FILE
from few_shot.tasks import Example, Task


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return synthetic.build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tokenizer: PreTrainedTokenizerFast) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=256,
        n_layer=2,
        n_embd=32,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config)
    model.train(False)
    return model


@pytest.fixture(scope="session")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
) -> Path:
    directory = tmp_path_factory.mktemp("model")
    tiny_model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / FORMAT_FILE).write_text(json.dumps({"format": "icl"}))
    return directory


@pytest.fixture()
def colour_task() -> Task:
    w1, w2, w3 = synthetic.INVENTED[:3]
    pool = tuple(
        Example(word, colour) for word, colour in [(w1, "red"), (w2, "blue"), (w3, "green")] * 3
    )
    queries = (Example(w1, "red"), Example(w2, "blue"), Example(w3, "green"))
    return Task("colours", "translate the words :", ("blue", "green", "red"), pool, queries)
