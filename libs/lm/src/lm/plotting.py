"""Loss-curve plots of a pretraining run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

# Importing ml_core.plotting selects the Agg backend before any figure is made.
from ml_core.plotting import save_figure


def plot_loss_curve(records: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Plot training and validation loss against step into a PNG at ``path`` (atomically)."""
    figure, axes = plt.subplots(figsize=(7, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        if points:
            steps, losses = zip(*points)
            axes.plot(steps, losses, marker="o", markersize=3, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy loss (nats/token)")
    axes.set_title("Pretraining loss")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, path, dpi=100)
