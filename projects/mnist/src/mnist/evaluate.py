"""Evaluate a saved checkpoint on the test split of a data set."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import torch

from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import Command, ConfigError, make_main, option, positional
from mnist.data import DataError, load_data
from mnist.model import DigitCNN, ModelConfig
from mnist.plots import save_confusion_matrix
from mnist.train import PACKAGES, choose_device, evaluate_model


class CheckpointError(ValueError):
    """The checkpoint is missing or was not written by mnist.train."""


def load_checkpoint(
    path: str | os.PathLike[str], device: torch.device | None = None
) -> tuple[DigitCNN, dict[str, Any]]:
    """Rebuild the model saved by ``mnist.train`` and return it with the checkpoint dict."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=device or "cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {error}") from None
    if not isinstance(checkpoint, dict) or not {"model_state", "model_config"} <= checkpoint.keys():
        raise CheckpointError(
            f"{path} was not written by mnist.train (no model_state/model_config)."
        )
    model = DigitCNN(ModelConfig.from_dict(checkpoint["model_config"]))
    model.load_state_dict(checkpoint["model_state"])
    if device is not None:
        model.to(device)
    model.eval()
    return model, checkpoint


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
