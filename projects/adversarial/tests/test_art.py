from __future__ import annotations

import pytest
import torch

from adversarial.art_check import (
    AutoAttackConfig,
    art_autoattack_accuracy,
    art_fgsm_accuracy,
    art_pgd_accuracy,
)
from adversarial.attacks import FGSMConfig, PGDConfig, accuracy, fgsm, pgd
from vision.model import DigitCNN


def test_art_and_ours_agree_on_fgsm_and_pgd(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    ours = accuracy(trained_cnn, fgsm(trained_cnn, images, labels, FGSMConfig(0.1)), labels)
    assert art_fgsm_accuracy(trained_cnn, images, labels, 0.1) == pytest.approx(ours, abs=0.01)
    config = PGDConfig(eps=0.1, steps=10, random_start=False)
    ours = accuracy(trained_cnn, pgd(trained_cnn, images, labels, config), labels)
    assert art_pgd_accuracy(trained_cnn, images, labels, config) == pytest.approx(ours, abs=0.01)


def test_autoattack_is_at_least_as_strong_as_pgd(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch[0][:30], test_batch[1][:30]
    config = AutoAttackConfig(eps=0.05, apgd_iterations=10, square_queries=20)
    robust = art_autoattack_accuracy(trained_cnn, images, labels, config)
    pgd_robust = accuracy(
        trained_cnn, pgd(trained_cnn, images, labels, PGDConfig(eps=0.05, steps=10)), labels
    )
    assert robust <= pgd_robust + 1 / 30
