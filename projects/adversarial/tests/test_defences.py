from __future__ import annotations

import torch
from conftest import tiny_cnn

from adversarial.attacks import FGSMConfig, PGDConfig, accuracy, fgsm, pgd
from adversarial.defences import (
    AdversarialTrainingConfig,
    DisagreementDetector,
    adversarial_training_loss,
    distillation_loss,
)
from adversarial.models import DigitMLP
from vision.data import DigitData
from vision.model import DigitCNN
from vision.training import FitConfig, fit


def test_adversarial_training_beats_the_undefended_model_under_pgd(
    digits: DigitData, trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    defended = tiny_cnn()
    training = AdversarialTrainingConfig(eps=0.1, steps=3, lam=0.5, seed=0)
    fit(
        defended,
        digits.train,
        digits.validation,
        FitConfig(epochs=6, batch_size=32, seed=0),
        batch_loss=adversarial_training_loss(training),
        progress=False,
    )
    attack = PGDConfig(eps=0.1, steps=10, seed=0)
    defended_robust = accuracy(defended, pgd(defended, images, labels, attack), labels)
    undefended_robust = accuracy(trained_cnn, pgd(trained_cnn, images, labels, attack), labels)
    assert defended_robust > undefended_robust + 0.05
    assert accuracy(defended, images, labels) > 0.7


class _Saturated(torch.nn.Module):
    """What distillation at temperature T does to the deployed model: logits scaled up T-fold."""

    def __init__(self, model: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(images) * self.scale
        return logits


def test_saturated_softmax_hides_gradients_from_fgsm_but_not_from_the_logit_margin(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    saturated = _Saturated(trained_cnn, 1000.0).eval()
    clean = accuracy(saturated, images, labels)
    softmax_attack = accuracy(saturated, fgsm(saturated, images, labels, FGSMConfig(0.1)), labels)
    margin_attack = accuracy(
        saturated, fgsm(saturated, images, labels, FGSMConfig(0.1, loss="margin")), labels
    )
    assert softmax_attack > clean - 0.1  # the vanished gradient barely moves anything
    assert margin_attack < softmax_attack - 0.2


def test_distillation_loss_is_the_cross_entropy_to_the_teachers_soft_labels() -> None:
    torch.manual_seed(0)
    teacher, student = DigitMLP(), DigitMLP()
    images = torch.rand(5, 8, 8)
    labels = torch.zeros(5, dtype=torch.long)
    student.eval()
    value = distillation_loss(teacher, 2.0)(student, images, labels)
    with torch.no_grad():
        soft = torch.softmax(teacher.eval()(images) / 2.0, dim=1)
    student.eval()
    expected = -(soft * torch.log_softmax(student(images) / 2.0, dim=1)).sum(1).mean()
    assert torch.allclose(value, expected)


def test_the_detector_is_silent_when_both_models_agree_and_alerts_when_they_do_not(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    assert not DisagreementDetector(trained_cnn, trained_cnn).alerts(images).any()
    torch.manual_seed(0)
    untrained = DigitMLP()
    alerts = DisagreementDetector(trained_cnn, untrained).alerts(images)
    with torch.no_grad():
        differ = trained_cnn(images).argmax(1) != untrained.eval()(images).argmax(1)
    assert torch.equal(alerts, differ)
    assert bool(alerts.any())
