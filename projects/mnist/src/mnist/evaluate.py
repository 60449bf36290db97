"""Evaluate a saved checkpoint on the test split of a data set."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import Command, ConfigError, make_main, option, positional
from mnist.plots import save_confusion_matrix
from mnist.train import PACKAGES, choose_device
from vision.checkpoint import CheckpointError, load_checkpoint
from vision.data import DataError, load_data
from vision.training import evaluate_model

__all__ = ["CheckpointError", "EvaluateConfig", "evaluate", "load_checkpoint", "main"]


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Evaluate a checkpoint written by train on the test split of a data set."""

    checkpoint: Path = positional(help="model.pt, or the run directory that holds it")
    data: str | None = None
    """MNIST IDX directory or 'digits' (unset: $MNIST_DATA_DIR, else digits)."""

    out: Path | None = None
    """Write evaluation.json and a confusion-matrix PNG here (unset: print only)."""

    device: str | None = None
    """Device: auto, cpu, cuda, cuda:N or mps (unset: $ML_DEVICE, else auto)."""

    seed: int = option(0, help="must match training's for the digits split")


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Test loss and accuracy of the checkpoint; writes ``evaluation.json`` and a confusion matrix
    to ``config.out`` when it is set."""
    device = choose_device(config.device)
    model, saved = load_checkpoint(config.checkpoint, device)
    digits = load_data(config.data, seed=config.seed)
    if digits.image_size != model.config.image_size:
        raise DataError(
            f"the checkpoint expects {model.config.image_size}x{model.config.image_size} images "
            "but "
            f"{digits.source} has {digits.image_size}x{digits.image_size}."
        )
    result = evaluate_model(model, digits.test, device)
    metrics: dict[str, Any] = {
        "checkpoint": str(config.checkpoint),
        "data": digits.source,
        "test_examples": len(digits.test),
        "test_loss": result.loss,
        "test_accuracy": result.accuracy,
        "trained_at_commit": saved.get("run", {}).get("git_sha"),
        "run": collect_run_metadata(PACKAGES).to_dict(),
    }
    if config.out is not None:
        write_json_atomic(config.out / "evaluation.json", metrics)
        save_confusion_matrix(
            result.confusion,
            config.out / "evaluation_confusion_matrix.png",
            f"test accuracy {result.accuracy:.4f}",
        )
    return metrics


def _show(metrics: dict[str, Any]) -> str:
    return (
        f"test accuracy {metrics['test_accuracy']:.4f} "
        f"on {metrics['test_examples']} examples ({metrics['data']})"
    )


main = make_main(
    Command(EvaluateConfig, evaluate),
    prog="evaluate",
    user_errors=(CheckpointError, DataError, ConfigError),
    show=_show,
)

if __name__ == "__main__":
    sys.exit(main(None))
