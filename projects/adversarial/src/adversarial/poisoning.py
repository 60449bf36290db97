"""Backdoor poisoning: a trigger patch stamped on a fraction of the training images, relabelled to a
target class (Gu et al., BadNets)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from adversarial.attacks import eval_mode
from ml_core.cli import require, require_fraction, require_positive
from vision.data import Split


@dataclasses.dataclass(frozen=True)
class BackdoorConfig:
    fraction: float = 0.05
    """Share of the training set that is poisoned, in (0, 1]."""

    target: int = 0
    """Class every triggered image should be classified as."""

    patch: int = 3
    """Side of the square trigger in the bottom-right corner, in pixels."""

    value: float = 1.0
    """Trigger pixel value."""

    seed: int = 0

    def __post_init__(self) -> None:
        require_fraction(self, "fraction")
        require_fraction(self, "value")
        require_positive(self, "patch")
        require(0 <= self.target < 10, "target", f"must be a class in 0..9, got {self.target}")


def add_trigger(images: np.ndarray, config: BackdoorConfig) -> np.ndarray:
    """A copy of the (N, H, W) images with the trigger patch stamped on."""
    stamped = images.copy()
    stamped[:, -config.patch :, -config.patch :] = config.value
    return stamped


def poison(train: Split, config: BackdoorConfig) -> tuple[Split, np.ndarray]:
    """``train`` with ``fraction`` of its images (drawn from non-target classes) triggered and
    relabelled to the target; returns it and the poisoned indices."""
    rng = np.random.default_rng(config.seed)
    candidates = np.flatnonzero(train.labels != config.target)
    count = max(1, int(config.fraction * len(train)))
    chosen = rng.choice(candidates, size=min(count, len(candidates)), replace=False)
    images = train.images.copy()
    labels = train.labels.copy()
    images[chosen] = add_trigger(images[chosen], config)
    labels[chosen] = config.target
    return Split(images, labels), np.sort(chosen)


@torch.no_grad()
def attack_success_rate(
    model: nn.Module,
    test: Split,
    config: BackdoorConfig,
    trigger: Callable[[np.ndarray, BackdoorConfig], np.ndarray] = add_trigger,
) -> float:
    """Share of test images of other classes, stamped by ``trigger``, that the model puts in the
    target class."""
    keep = test.labels != config.target
    triggered = torch.from_numpy(trigger(test.images[keep], config))
    with eval_mode(model):
        predictions = model(triggered).argmax(dim=1)
    return float((predictions == config.target).float().mean())
