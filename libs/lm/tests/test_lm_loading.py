"""Loading by path round-trips; loading by Hub id fails fast and clearly (HF_HUB_OFFLINE=1 is set
for every test in pants.toml, so nothing is downloaded); ``load_model_spec`` picks a saved
directory, else a preset, else a Hub id."""

import os
from pathlib import Path

import pytest
import torch
from lm_testing import tiny_tokenizer
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm import (
    DEFAULT_PRETRAINED_DIR,
    ModelLoadError,
    build_model,
    load_model,
    load_model_spec,
    load_tokenizer,
    resolve_model_spec,
)


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


def test_a_relative_path_under_an_existing_folder_is_not_a_hub_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist") as error:
        load_model("runs/no-such-model")
    assert "Hugging Face Hub id" in str(error.value) and "Tried" not in str(error.value)


def test_unknown_hub_id_says_what_was_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1", "pants.toml [test] sets it: no Hub calls"
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


def test_a_preset_name_builds_a_seeded_model_with_the_preset_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no runs/lm-tiny, no directory called "llama-tiny" here
    loaded = load_model_spec("llama-tiny", preset_tokenizer=tiny_tokenizer, seed=3)
    assert loaded.source == "preset:llama-tiny"
    assert loaded.tokenizer is tiny_tokenizer() and loaded.tokenizer.pad_token is not None
    assert loaded.model.config.model_type == "llama" and not loaded.model.training
    again = load_model_spec("llama-tiny", preset_tokenizer=tiny_tokenizer, seed=3).model
    for left, right in zip(loaded.model.parameters(), again.parameters()):
        assert torch.equal(left, right)


def test_a_saved_directory_wins_over_a_preset_of_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer = tiny_tokenizer()
    saved = tmp_path / "tiny"  # a directory named like a preset: the directory is loaded
    build_model("llama-tiny", tokenizer=tokenizer, seed=0).save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    monkeypatch.chdir(tmp_path)

    def no_preset_tokenizer() -> PreTrainedTokenizerBase:
        raise AssertionError("a saved directory needs no preset tokenizer")

    for spec in ("tiny", saved):
        loaded = load_model_spec(spec, preset_tokenizer=no_preset_tokenizer)
        assert loaded.source == os.fspath(spec)
        assert loaded.model.config.model_type == "llama" and not loaded.model.training
        assert len(loaded.tokenizer) == len(tokenizer) and loaded.tokenizer.pad_token is not None


def test_a_missing_directory_raises_model_load_error(tmp_path: Path) -> None:
    missing = tmp_path / "runs" / "no-such-model"
    with pytest.raises(ModelLoadError, match="does not exist") as error:
        load_model_spec(missing, preset_tokenizer=tiny_tokenizer)
    assert str(missing) in str(error.value)


def test_an_unknown_name_that_is_neither_preset_nor_directory_tries_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match="Hugging Face Hub"):
        load_model_spec("no-such-model", preset_tokenizer=tiny_tokenizer)


def test_resolve_model_spec_defaults_to_the_pretrained_run_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_model_spec(None) == "tiny"
    assert load_model_spec(None, preset_tokenizer=tiny_tokenizer).source == "preset:tiny"
    assert resolve_model_spec("small") == "small"
    assert resolve_model_spec(Path("some/dir")) == "some/dir"
    run = tmp_path / DEFAULT_PRETRAINED_DIR
    run.mkdir(parents=True)
    assert resolve_model_spec(None) == "tiny"  # an empty directory is not a pretrained run
    tokenizer = tiny_tokenizer()
    build_model("tiny", tokenizer=tokenizer, seed=0).save_pretrained(run)
    tokenizer.save_pretrained(run)
    assert resolve_model_spec(None) == str(DEFAULT_PRETRAINED_DIR)
    loaded = load_model_spec(None, preset_tokenizer=tiny_tokenizer)
    assert loaded.source == str(DEFAULT_PRETRAINED_DIR)
    assert loaded.model.config.model_type == "gpt2"
