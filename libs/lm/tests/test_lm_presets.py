import logging

import pytest
import torch
from lm_testing import tiny_tokenizer

from lm import PRESETS, build_model, count_parameters, get_preset, preset_names


@pytest.mark.parametrize(
    ("preset", "layer_path"),
    [("tiny", "transformer.h.0.attn.c_attn"), ("llama-tiny", "model.layers.0.self_attn.q_proj")],
)
def test_presets_forward_and_generate(preset: str, layer_path: str) -> None:
    tokenizer = tiny_tokenizer()
    model = build_model(preset, tokenizer=tokenizer, seed=0).train(False)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    # The two families really have different module layouts.
    assert layer_path in dict(model.named_modules())

    input_ids = torch.tensor([tokenizer("Return the sum")["input_ids"]])
    logits = model(input_ids=input_ids).logits
    assert logits.shape == (1, input_ids.shape[1], len(tokenizer))
    assert torch.isfinite(logits).all()

    generated = model.generate(
        input_ids, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id
    )
    assert generated.shape == (1, input_ids.shape[1] + 4)
    assert torch.equal(generated[:, : input_ids.shape[1]], input_ids)


def test_tiny_presets_are_tiny_and_seeded() -> None:
    first = build_model("tiny", vocab_size=300, seed=1)
    second = build_model("tiny", vocab_size=300, seed=1)
    other = build_model("tiny", vocab_size=300, seed=2)
    assert first.config.n_layer == 2 and first.config.n_embd == 64
    assert count_parameters(first) < 500_000
    assert torch.equal(first.lm_head.weight, second.lm_head.weight)
    assert not torch.equal(first.lm_head.weight, other.lm_head.weight)


def test_small_preset_has_gpt2_small_shape() -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        model = build_model("small")
    assert round(count_parameters(model) / 1e6) == 124
    assert get_preset("small").context_length == 1024


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(ValueError, match="Unknown model preset 'huge'") as error:
        build_model("huge")
    for name in preset_names():
        assert name in str(error.value)
    assert set(preset_names()) == set(PRESETS) >= {"tiny", "small", "llama-tiny"}


def test_bad_vocab_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="vocab_size must be positive"):
        build_model("tiny", vocab_size=0)


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_training_loss_is_named_so_transformers_logs_no_loss_type_warning(preset: str) -> None:
    tokenizer = tiny_tokenizer()
    model = build_model(preset, tokenizer=tokenizer, seed=0)
    assert model.loss_type is not None

    records: list[logging.LogRecord] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Recorder()
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(handler)
    try:
        input_ids = torch.tensor([tokenizer("Return the sum")["input_ids"]])
        loss = model(input_ids=input_ids, labels=input_ids).loss
    finally:
        transformers_logger.removeHandler(handler)
    assert loss is not None and torch.isfinite(loss)
    assert not [record for record in records if "loss_type" in record.getMessage()]
