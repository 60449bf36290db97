"""Evaluate a saved checkpoint on the test split of a data set."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ml_core import collect_run_metadata, write_json_atomic
from ml_core.device import select_device
from mnist.data import DataError, load_data
from mnist.model import DigitCNN, ModelConfig
from mnist.plots import save_confusion_matrix
from mnist.train import PACKAGES, evaluate_model


class CheckpointError(ValueError):
    """The checkpoint is missing or was not written by mnist.train."""


def load_checkpoint(
    path: str | os.PathLike[str], device: torch.device | None = None
) -> tuple[DigitCNN, dict[str, Any]]:
    """Rebuild the model saved by ``mnist.train`` and return it with the
    checkpoint dict."""
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


def evaluate(
    checkpoint: Path,
    data: str | None,
    out: Path | None,
    device_name: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    device = select_device(device_name)
    model, saved = load_checkpoint(checkpoint, device)
    digits = load_data(data, seed=seed)
    if digits.image_size != model.config.image_size:
        raise DataError(
            f"the checkpoint expects {model.config.image_size}x{model.config.image_size} images "
            "but "
            f"{digits.source} has {digits.image_size}x{digits.image_size}."
        )
    result = evaluate_model(model, digits.test, device)
    metrics: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "data": digits.source,
        "test_examples": len(digits.test),
        "test_loss": result.loss,
        "test_accuracy": result.accuracy,
        "trained_at_commit": saved.get("run", {}).get("git_sha"),
        "run": collect_run_metadata(PACKAGES).to_dict(),
    }
    if out is not None:
        write_json_atomic(out / "evaluation.json", metrics)
        save_confusion_matrix(
            result.confusion,
            out / "evaluation_confusion_matrix.png",
            f"test accuracy {result.accuracy:.4f}",
        )
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate", description="Evaluate a checkpoint written by train."
    )
    parser.add_argument(
        "checkpoint", type=Path, help="model.pt, or the run directory that holds it"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="MNIST IDX directory or 'digits' (default: $MNIST_DATA_DIR, else digits)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write evaluation.json and a confusion-matrix PNG here",
    )
    parser.add_argument("--device", default=None)
    parser.add_argument(
        "--seed", type=int, default=0, help="must match training's for the digits split"
    )
    args = parser.parse_args(argv)
    try:
        metrics = evaluate(args.checkpoint, args.data, args.out, args.device, args.seed)
    except (CheckpointError, DataError, ValueError) as error:
        print(f"evaluate: error: {error}", file=sys.stderr)
        return 2
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} "
        f"on {metrics['test_examples']} examples ({metrics['data']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
