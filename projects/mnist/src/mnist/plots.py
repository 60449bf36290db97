"""PNG plots of a run, written atomically (``ml_core.plotting``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ml_core.plotting import save_figure


def save_confusion_matrix(matrix: np.ndarray, path: str | os.PathLike[str], title: str) -> None:
    """Rows are true labels, columns predictions; each cell shows its count."""
    figure, axes = plt.subplots(figsize=(6, 5.5))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    labels = range(matrix.shape[0])
    axes.set_xticks(list(labels))
    axes.set_yticks(list(labels))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in labels:
        for column in labels:
            value = int(matrix[row, column])
            color = "white" if value > threshold else "black"
            axes.text(column, row, str(value), ha="center", va="center", color=color, fontsize=8)
    figure.tight_layout()
    save_figure(figure, path, dpi=120)


def save_training_curves(history: Sequence[dict[str, float]], path: str | os.PathLike[str]) -> None:
    """Loss and accuracy per epoch for the training and validation sets."""
    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot(epochs, [row["train_loss"] for row in history], label="train")
    loss_axes.plot(epochs, [row["val_loss"] for row in history], label="validation")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("cross-entropy")
    loss_axes.legend()
    accuracy_axes.plot(epochs, [row["val_accuracy"] for row in history], label="validation")
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.legend()
    figure.tight_layout()
    save_figure(figure, path, dpi=120)
