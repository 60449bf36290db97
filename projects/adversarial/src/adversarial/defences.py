"""Defences: PGD adversarial training, defensive distillation, and a disagreement detector."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from adversarial.attacks import PGDConfig, eval_mode, pgd
from ml_core.cli import require, require_fraction, require_positive
from vision.training import BatchLoss


@dataclasses.dataclass(frozen=True)
class AdversarialTrainingConfig:
    """Minimise ``lam * CE(clean) + (1 - lam) * CE(PGD(clean))`` (Goodfellow et al.; Madry et
    al. with ``lam = 0``)."""

    eps: float = 0.1
    steps: int = 7
    lam: float = 0.5
    """Weight of the clean loss, in [0, 1]."""

    seed: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "steps")
        require_fraction(self, "eps")
        require_fraction(self, "lam", allow_zero=True)


def adversarial_training_loss(config: AdversarialTrainingConfig) -> BatchLoss:
    """A :data:`vision.training.BatchLoss` that crafts PGD examples against the current weights."""
    attack = PGDConfig(eps=config.eps, steps=config.steps, seed=config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    def loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        adversarial = pgd(model, images, labels, attack, generator=generator)
        model.train()
        clean_loss = nn.functional.cross_entropy(model(images), labels)
        adversarial_loss = nn.functional.cross_entropy(model(adversarial), labels)
        return config.lam * clean_loss + (1 - config.lam) * adversarial_loss

    return loss


def temperature_loss(temperature: float) -> BatchLoss:
    """Cross-entropy of ``softmax(logits / T)``: how the distillation teacher is trained."""
    require(temperature > 0, "temperature", f"must be positive, got {temperature}")

    def loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model(images) / temperature, labels)

    return loss


def distillation_loss(teacher: nn.Module, temperature: float) -> BatchLoss:
    """Cross-entropy against the teacher's soft labels ``softmax(teacher / T)``, both at ``T``
    (Papernot et al.

    2016); the student is then deployed at temperature 1.
    """
    require(temperature > 0, "temperature", f"must be positive, got {temperature}")

    def loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), eval_mode(teacher):
            soft = torch.softmax(teacher(images) / temperature, dim=1)
        log_probabilities = torch.log_softmax(model(images) / temperature, dim=1)
        return -(soft * log_probabilities).sum(dim=1).mean()

    return loss


@dataclasses.dataclass(frozen=True)
class DisagreementDetector:
    """Alert when two models of different architectures disagree on an input's class.

    Adversarial examples crafted against one rarely transfer with the same wrong class to the other;
    clean inputs rarely split them. It does not resist an attacker who knows both models.
    """

    primary: nn.Module
    secondary: nn.Module

    @torch.no_grad()
    def alerts(self, images: torch.Tensor) -> torch.Tensor:
        with eval_mode(self.primary), eval_mode(self.secondary):
            first = self.primary(images).argmax(dim=1)
            second = self.secondary(images).argmax(dim=1)
        disagree: torch.Tensor = first != second
        return disagree
