import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import PreTrainedModel

from lm import load_model, load_tokenizer
from lm.pretrain import PretrainConfig, main, run
from ml_core.cli import ConfigError

FAST = [
    "--max-chars=20000",
    "--vocab-size=300",
    "--block-size=32",
    "--batch-size=4",
    "--eval-batches=2",
    "--quiet",
]


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pretrain_writes_a_loadable_run_and_resumes(tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert main(["--preset=tiny", "--steps=2", f"--out={first}", "--eval-every=1", *FAST]) == 0
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "run_metadata.json",
        "metrics.json",
        "metrics.jsonl",
        "loss_curve.png",
        "training_state.pt",
    ):
        assert (first / name).is_file(), name
    assert (first / "loss_curve.png").read_bytes().startswith(b"\x89PNG")
    assert [r["step"] for r in read_log(first / "metrics.jsonl")] == [0, 1, 2]
    metrics = json.loads((first / "metrics.json").read_text())
    assert metrics["step"] == 2 and metrics["train_tokens"] == 2 * 4 * 32
    assert metrics["val_loss"] < metrics["initial_val_loss"]
    metadata = json.loads((first / "run_metadata.json").read_text())
    assert "git_sha" in metadata and metadata["preset"] == "tiny"
    assert metadata["corpus"]["source"] == "stdlib"

    model, tokenizer = load_model(first), load_tokenizer(first)
    assert model.config.vocab_size == len(tokenizer) <= 300

    second = tmp_path / "second"
    argv = ["--steps=3", f"--out={second}", f"--resume={first}", "--eval-every=1", *FAST]
    assert main(argv) == 0
    assert [r["step"] for r in read_log(second / "metrics.jsonl")] == [0, 1, 2, 3]
    assert torch.load(second / "training_state.pt", weights_only=True)["step"] == 3
    resumed = json.loads((second / "metrics.json").read_text())
    assert resumed["step"] == 3 and resumed["train_tokens"] == 4 * 32
    assert resumed["initial_val_loss"] == metrics["initial_val_loss"]


def test_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    straight, split = tmp_path / "straight", tmp_path / "split"
    options = ["--preset=llama-tiny", "--schedule=constant", "--eval-every=10", *FAST]
    assert main([*options, "--steps=3", f"--out={straight}"]) == 0
    assert main([*options, "--steps=2", f"--out={split}"]) == 0
    assert main([*options, "--steps=3", f"--out={split}", f"--resume={split}"]) == 0
    a, b = load_model(straight), load_model(split)
    for (name, left), right in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(left, right, atol=1e-6), name


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--preset=huge"],
            "--preset: unknown preset 'huge'; available presets: llama-tiny, small",
        ),
        (["--corpus=/no/such/corpus"], "does not exist"),
        (["--block-size=1000"], "exceeds the model's context of 256"),
        (["--tokenizer=/no/such/tokenizer"], "Could not load a tokenizer"),
    ],
)
def test_bad_inputs_give_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["--steps=1", f"--out={tmp_path / 'out'}", *FAST, *extra]) == 2
    assert message in capsys.readouterr().err


def test_resume_needs_a_checkpoint_and_out_must_not_hold_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--steps=1", f"--out={tmp_path / 'a'}", f"--resume={tmp_path}", *FAST]) == 2
    assert "no training_state.pt there to resume from" in capsys.readouterr().err
    assert main(["--steps=1", f"--out={tmp_path / 'b'}", *FAST]) == 0
    assert main(["--steps=2", f"--out={tmp_path / 'b'}", *FAST]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--steps=0", "--steps: must be positive, got 0"),
        ("--batch-size=-2", "--batch-size: must be positive, got -2"),
        ("--validation-fraction=1", "--validation-fraction: must be between 0 and 1, got 1.0"),
        ("--warmup-steps=-1", "--warmup-steps: must be zero or more, got -1"),
        ("--schedule=linear", "argument --schedule: invalid choice: 'linear'"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, message: str
) -> None:
    assert main([flag, f"--out={tmp_path}"]) == 2
    error = capsys.readouterr().err
    assert f"pretrain: error: {message}" in error
    assert "Traceback" not in error
    assert not any(tmp_path.iterdir())


def test_config_validates_from_python_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        PretrainConfig(out=tmp_path, eval_every=0)
    assert error.value.field == "eval_every"


class RecordingCallback:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def on_train_begin(self, model: PreTrainedModel) -> None:
        self.events.append(("begin", model.training))

    def on_step_end(self, step: int) -> None:
        self.events.append(("step", step))

    def on_train_end(self) -> None:
        self.events.append(("end", None))


def test_callbacks_see_every_step_between_begin_and_end(tmp_path: Path) -> None:
    callback = RecordingCallback()
    config = PretrainConfig(
        out=tmp_path,
        steps=3,
        eval_every=2,
        max_chars=20000,
        vocab_size=300,
        block_size=32,
        batch_size=4,
        eval_batches=2,
        quiet=True,
    )
    metrics = run(config, callbacks=[callback])
    assert metrics["step"] == 3
    recorded = json.loads((tmp_path / "run_metadata.json").read_text())["args"]
    assert recorded["out"] == str(tmp_path) and recorded["steps"] == 3
    assert [name for name, _ in callback.events] == ["begin", "step", "step", "step", "end"]
    assert [value for name, value in callback.events if name == "step"] == [1, 2, 3]
