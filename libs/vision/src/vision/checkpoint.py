"""Checkpoints of a :class:`~vision.model.DigitCNN`: weights, model config and metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ml_core import atomic_output
from vision.model import DigitCNN, ModelConfig

ARCHITECTURE = "DigitCNN"
CHECKPOINT_NAME = "model.pt"


class CheckpointError(ValueError):
    """The checkpoint is missing, unreadable, or holds another model."""


def save_checkpoint(path: str | os.PathLike[str], model: DigitCNN, **extra: Any) -> Path:
    """Write the model's weights and config (plus ``extra`` entries) atomically."""
    checkpoint = {
        "architecture": ARCHITECTURE,
        "model_state": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "model_config": model.config.to_dict(),
        **extra,
    }
    with atomic_output(path) as temporary:
        torch.save(checkpoint, temporary)
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike[str], device: torch.device | None = None
) -> tuple[DigitCNN, dict[str, Any]]:
    """Rebuild the :class:`DigitCNN` saved at ``path`` (a file, or a directory holding ``model.pt``)
    in eval mode; a missing, foreign or mismatched checkpoint raises :class:`CheckpointError` saying
    which."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=device or "cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"{path} is not a readable torch checkpoint: {error}") from None
    if not isinstance(checkpoint, dict) or not {"model_state", "model_config"} <= checkpoint.keys():
        raise CheckpointError(
            f"{path} is not a {ARCHITECTURE} checkpoint (no model_state/model_config)."
        )
    # mnist's checkpoints from before the architecture field hold a DigitCNN too.
    architecture = checkpoint.get("architecture", ARCHITECTURE)
    if architecture != ARCHITECTURE:
        raise CheckpointError(
            f"{path} holds a {architecture!r} model, not a {ARCHITECTURE}: it cannot be loaded "
            "here."
        )
    try:
        model = DigitCNN(ModelConfig.from_dict(checkpoint["model_config"]))
        model.load_state_dict(checkpoint["model_state"])
    except (TypeError, ValueError, KeyError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise CheckpointError(
            f"{path} does not match the {ARCHITECTURE} it describes: {first_line}"
        ) from None
    if device is not None:
        model.to(device)
    model.eval()
    return model, checkpoint
