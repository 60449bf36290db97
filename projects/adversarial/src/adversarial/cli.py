"""``adversarial``: Attacks and defences on the digit classifier.

Trains the model, writes ``metrics.json`` and ``loss.png`` under ``--out``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from adversarial.core import make_data, train
from ml_core import collect_run_metadata, seed_everything, write_json_atomic
from ml_core.cli import Command, config_to_dict, make_main, require_non_negative, require_positive
from ml_core.plotting import save_figure


@dataclasses.dataclass(frozen=True)
class Config:
    """Train a linear model on noisy synthetic points."""

    out: Path = Path("runs/adversarial")
    """Output directory."""

    samples: int = 200
    """Number of synthetic points."""

    noise: float = 0.1
    """Standard deviation of the noise."""

    steps: int = 200
    """SGD steps."""

    learning_rate: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "samples", "steps", "learning_rate")
        require_non_negative(self, "noise")


def run(config: Config) -> dict[str, Any]:
    """Train, then write the metrics and the loss curve; returns the metrics."""
    seed_everything(config.seed)
    x, y = make_data(config.samples, config.noise, config.seed)
    model, losses = train(
        x, y, steps=config.steps, learning_rate=config.learning_rate, seed=config.seed
    )
    metrics = {
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "weight": float(model.linear.weight),
        "bias": float(model.linear.bias),
        "config": config_to_dict(config),
        "run": collect_run_metadata(packages=("torch", "numpy")).to_dict(),
    }
    write_json_atomic(config.out / "metrics.json", metrics)
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot(losses)
    axes.set_xlabel("step")
    axes.set_ylabel("MSE loss")
    axes.set_yscale("log")
    save_figure(figure, config.out / "loss.png")
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; outputs in {config.out}")
    return metrics


main = make_main(Command(Config, run), prog="adversarial", description=__doc__)
