from pathlib import Path

import pytest
from lm_testing import TEXTS, VOCAB_SIZE, tiny_tokenizer

from lm import EOS_TOKEN, PAD_TOKEN, load_tokenizer, train_tokenizer

SAMPLES = [
    "Return the sum of the list.",
    "  leading spaces, tabs\tand\nnewlines  ",
    "Unicode: café, naïve, 日本語, emoji 🐍 — and a stray ' .",
    "def f(x):\n    return x ** 2  # squared",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_decode_of_encode_round_trips(text: str) -> None:
    tokenizer = tiny_tokenizer()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_special_tokens() -> None:
    tokenizer = tiny_tokenizer()
    assert tokenizer.eos_token == EOS_TOKEN and tokenizer.pad_token == PAD_TOKEN
    assert isinstance(tokenizer.eos_token_id, int) and isinstance(tokenizer.pad_token_id, int)
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    # Special tokens are single ids, not byte pieces.
    assert tokenizer(EOS_TOKEN, add_special_tokens=False)["input_ids"] == [tokenizer.eos_token_id]


def test_training_learns_merges_and_is_deterministic() -> None:
    first = train_tokenizer(TEXTS, VOCAB_SIZE)
    second = train_tokenizer(list(TEXTS), VOCAB_SIZE)
    assert first.get_vocab() == second.get_vocab()
    assert 258 < len(first) <= VOCAB_SIZE
    # Merges make common words shorter than their bytes.
    assert len(first("Return the")["input_ids"]) < len("Return the")


def test_padding_batches() -> None:
    tokenizer = tiny_tokenizer()
    batch = tokenizer(["sum", "Return the product of the mapping"], padding=True)
    lengths = [sum(mask) for mask in batch["attention_mask"]]
    assert lengths[0] < lengths[1]
    assert tokenizer.pad_token_id in batch["input_ids"][0]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert (loaded.eos_token, loaded.pad_token) == (EOS_TOKEN, PAD_TOKEN)
    text = SAMPLES[2]
    assert loaded.decode(loaded(text)["input_ids"]) == text


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="vocab_size must be at least 258"):
        train_tokenizer(TEXTS, 100)
    with pytest.raises(ValueError, match="empty texts"):
        train_tokenizer(["", ""], VOCAB_SIZE)
