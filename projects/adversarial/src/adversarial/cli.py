"""``adversarial``: attacks and defences on the digit classifier.

``report`` trains the models, runs every attack and defence, cross-checks with IBM ART and writes
report.json, robustness.png, examples.png and report.html; ``attack`` runs one attack on a saved
DigitCNN checkpoint (this project's or projects/mnist's ``model.pt``).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

from adversarial.attacks import ATTACK_NAMES, accuracy, check_eps, run_attack
from adversarial.report import ReportConfig, run_report
from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import (
    Command,
    ConfigError,
    config_to_dict,
    make_main,
    positional,
    require,
    require_positive,
)
from vision.checkpoint import CheckpointError, load_checkpoint
from vision.data import DataError, load_data


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """Attack a saved DigitCNN on the test split of the 8x8 digits; print clean and robust
    accuracy."""

    checkpoint: Path = positional(help="model.pt, or the run directory that holds it")
    attack: str = "pgd"
    """One of: fgsm, pgd, pgd-margin, simba."""

    eps: float = 0.1
    """L-inf budget, in (0, 1] (pixels are in [0, 1])."""

    examples: int | None = None
    """Test images to attack (unset: all)."""

    seed: int = 0
    """Data split (must match training's) and the attack's randomness."""

    out: Path | None = None
    """Write attack.json here (unset: print only)."""

    def __post_init__(self) -> None:
        require(
            self.attack in ATTACK_NAMES,
            "attack",
            f"unknown attack {self.attack!r}; choose one of {', '.join(ATTACK_NAMES)}",
        )
        check_eps(self.eps)
        require_positive(self, "examples")


def run_attack_command(config: AttackConfig) -> dict[str, Any]:
    model, _ = load_checkpoint(config.checkpoint)
    data = load_data("digits", seed=config.seed)
    if model.config.image_size != data.image_size:
        raise CheckpointError(
            f"{config.checkpoint} expects {model.config.image_size}x{model.config.image_size} "
            f"images; the digits are {data.image_size}x{data.image_size}."
        )
    end = config.examples or len(data.test)
    images = torch.from_numpy(data.test.images[:end])
    labels = torch.from_numpy(data.test.labels[:end])
    adversarial = run_attack(config.attack, model, images, labels, config.eps, config.seed)
    result = {
        "config": config_to_dict(config),
        "examples": len(labels),
        "clean_accuracy": accuracy(model, images, labels),
        "robust_accuracy": accuracy(model, adversarial, labels),
        "max_perturbation": float((adversarial - images).abs().max()),
        "run": collect_run_metadata(("torch", "numpy")).to_dict(),
    }
    if config.out is not None:
        write_json_atomic(config.out / "attack.json", result)
    return result


def _show(result: dict[str, Any]) -> str | None:
    if "robust_accuracy" not in result:
        return None
    return (
        f"{result['config']['attack']} at eps {result['config']['eps']}: accuracy "
        f"{result['clean_accuracy']:.4f} -> {result['robust_accuracy']:.4f} "
        f"on {result['examples']} test images"
    )


main = make_main(
    {
        "report": Command(ReportConfig, run_report),
        "attack": Command(AttackConfig, run_attack_command),
    },
    prog="adversarial",
    description=__doc__,
    user_errors=(CheckpointError, DataError, ConfigError),
    show=_show,
)

if __name__ == "__main__":
    sys.exit(main(None))
