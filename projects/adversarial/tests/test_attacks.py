from __future__ import annotations

import pytest
import torch

from adversarial.attacks import (
    ATTACK_NAMES,
    FGSMConfig,
    PGDConfig,
    SimBAConfig,
    accuracy,
    fgsm,
    margin,
    pgd,
    probability_oracle,
    run_attack,
    simba,
)
from ml_core.cli import ConfigError
from vision.model import DigitCNN

EPS = 0.1


@pytest.mark.parametrize("name", ATTACK_NAMES)
@pytest.mark.parametrize("eps", [0.05, 0.1, 0.3])
def test_every_attack_stays_in_the_budget_and_the_pixel_range(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor], name: str, eps: float
) -> None:
    images, labels = test_batch
    adversarial = run_attack(name, trained_cnn, images, labels, eps)
    assert adversarial.shape == images.shape
    assert float((adversarial - images).abs().max()) <= eps + 1e-6
    assert float(adversarial.min()) >= 0.0 and float(adversarial.max()) <= 1.0
    # Every attack must hurt: the tiny model is not robust at these budgets.
    assert accuracy(trained_cnn, adversarial, labels) < accuracy(trained_cnn, images, labels)


def test_pgd_is_at_least_as_strong_as_fgsm(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    for eps in (0.03, 0.1):
        fgsm_accuracy = accuracy(
            trained_cnn, fgsm(trained_cnn, images, labels, FGSMConfig(eps)), labels
        )
        pgd_accuracy = accuracy(
            trained_cnn, pgd(trained_cnn, images, labels, PGDConfig(eps=eps, steps=20)), labels
        )
        assert pgd_accuracy <= fgsm_accuracy
    # At eps 0.1 PGD-20 leaves the undefended tiny model far below its clean accuracy.
    assert pgd_accuracy < 0.25


def test_pgd_is_reproducible_for_a_seed_and_its_random_start_matters(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    config = PGDConfig(eps=EPS, steps=2, seed=3)
    assert torch.equal(
        pgd(trained_cnn, images, labels, config), pgd(trained_cnn, images, labels, config)
    )
    other = pgd(trained_cnn, images, labels, PGDConfig(eps=EPS, steps=2, seed=4))
    assert not torch.equal(pgd(trained_cnn, images, labels, config), other)


def test_attacks_leave_the_model_mode_as_they_found_it(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    trained_cnn.train()
    pgd(trained_cnn, images[:4], labels[:4], PGDConfig(steps=1))
    assert trained_cnn.training
    trained_cnn.eval()


def test_margin_is_positive_exactly_when_misclassified() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 5.0]])
    labels = torch.tensor([0, 1])
    assert margin(logits, labels).tolist() == [-2.0, 3.0]


def test_simba_only_queries_probabilities_and_counts_them(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    calls: list[int] = []
    oracle = probability_oracle(trained_cnn)

    def counting(batch: torch.Tensor) -> torch.Tensor:
        calls.append(len(batch))
        return oracle(batch)

    result = simba(counting, images, labels, SimBAConfig(eps=0.2, seed=0))
    assert sum(calls) == int(result.queries.sum())
    assert int(result.queries.max()) <= 2 * 64 + 1
    predictions = trained_cnn(result.adversarial).argmax(1)
    assert torch.equal(result.success, predictions != labels)
    assert float(result.success.float().mean()) > 1 - accuracy(trained_cnn, images, labels)


@pytest.mark.parametrize("eps", [0.0, -0.1, 1.5])
def test_eps_outside_the_unit_interval_is_refused(eps: float) -> None:
    for make in (lambda: FGSMConfig(eps), lambda: PGDConfig(eps=eps), lambda: SimBAConfig(eps)):
        with pytest.raises(ConfigError, match=r"eps: must be in \(0, 1\]"):
            make()


def test_unknown_attack_name_lists_the_known_ones(
    trained_cnn: DigitCNN, test_batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = test_batch
    with pytest.raises(ConfigError, match="unknown attack 'deepfool'; choose one of fgsm, pgd"):
        run_attack("deepfool", trained_cnn, images, labels, EPS)
