"""Loading by path round-trips; loading by Hub id fails fast and clearly
(HF_HUB_OFFLINE=1 is set for this file in BUILD, so nothing is downloaded)."""

import os
from pathlib import Path

import pytest
import torch
from lm_testing import tiny_tokenizer

from lm import ModelLoadError, build_model, load_model, load_tokenizer


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_saved_directory_round_trips(tmp_path: Path, preset: str) -> None:
    tokenizer = tiny_tokenizer()
    model = build_model(preset, tokenizer=tokenizer, seed=0).train(False)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    loaded = load_model(tmp_path).train(False)
    loaded_tokenizer = load_tokenizer(str(tmp_path))
    assert type(loaded) is type(model)
    input_ids = torch.tensor([loaded_tokenizer("Return the sum of the list")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids).logits, model(input_ids).logits, atol=1e-6)


def test_missing_local_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="does not exist") as error:
        load_model(missing)
    assert str(missing) in str(error.value)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_tokenizer(missing)


def test_unknown_hub_id_says_what_was_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1", "set in BUILD so the Hub is not contacted"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError) as error:
        load_model("no-such-org/no-such-model")
    message = str(error.value)
    assert "local directory" in message and "does not exist" in message
    assert "Hugging Face Hub" in message
    with pytest.raises(ModelLoadError, match="Hugging Face Hub"):
        load_tokenizer("no-such-org/no-such-model")


def test_directory_without_a_model(tmp_path: Path) -> None:
    tiny_tokenizer().save_pretrained(tmp_path)  # a tokenizer, but no config.json / weights
    with pytest.raises(ModelLoadError, match="from the local directory"):
        load_model(tmp_path)


def test_file_instead_of_directory(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_model(file)
