import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnist import evaluate
from mnist.train import EarlyStopping
from mnist.train import main as train_main


def test_training_learns_and_writes_traceable_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train_main(["--epochs", "3", "--out", str(out), "--seed", "1"]) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["source"] == "sklearn-digits"
    assert [row["epoch"] for row in metrics["history"]] == [1, 2, 3]
    assert metrics["history"][-1]["val_loss"] < metrics["history"][0]["val_loss"]
    assert metrics["test_accuracy"] > 0.5  # ten classes: chance is 0.1
    assert metrics["run"]["timestamp_utc"]
    assert "torch" in metrics["run"]["package_versions"]
    for png in ("confusion_matrix.png", "training_curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []

    model, checkpoint = evaluate.load_checkpoint(out)
    assert checkpoint["test_accuracy"] == metrics["test_accuracy"]
    assert model.config.image_size == 8


def test_evaluate_reproduces_the_training_test_accuracy(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert train_main(["--epochs", "1", "--max-steps-per-epoch", "5", "--out", str(run)]) == 0
    trained = json.loads((run / "metrics.json").read_text())

    assert evaluate.main([str(run / "model.pt"), "--out", str(tmp_path / "eval")]) == 0
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert evaluation["test_accuracy"] == pytest.approx(trained["test_accuracy"])
    assert (tmp_path / "eval" / "evaluation_confusion_matrix.png").exists()


def test_early_stopping_counts_epochs_without_improvement() -> None:
    stopping = EarlyStopping(patience=2)
    assert stopping.update(1, 1.0)
    assert not stopping.update(2, 1.5)
    assert not stopping.should_stop()
    assert stopping.update(3, 0.9)
    assert not stopping.update(4, 0.95)
    assert not stopping.update(5, 0.91)
    assert stopping.should_stop()
    assert (stopping.best_epoch, stopping.best_loss) == (3, 0.9)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--learning-rate", "-1"], "--learning-rate must be positive"),
        (["--data", "/nonexistent/mnist"], "does not exist"),
        (["--device", "tpu"], "Unknown device"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert train_main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_evaluate_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main([str(tmp_path / "model.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_torchrun_two_processes_agree_on_weights(tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    # The child processes need the same import path as this test (Pants' sandbox, PEX deps).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "mnist.train", "--epochs", "2", "--max-steps-per-epoch", "4",
        "--out", str(out), "--dump-rank-weights",
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["ranks_agree"] is True
    rank0 = torch.load(out / "weights_rank0.pt", weights_only=True)
    rank1 = torch.load(out / "weights_rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
