"""The independent cross-check: the same attacks from IBM's Adversarial Robustness Toolbox (ART) on
the same model, and ART's AutoAttack as the strongest evaluation (RobustBench's convention)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import art.attacks.evasion  # type: ignore[import-untyped]  # pants: no-infer-dep
import art.estimators.classification  # type: ignore[import-untyped]  # pants: no-infer-dep
import numpy as np
import torch
from torch import nn

from adversarial.attacks import PGDConfig, eval_mode

# ART logs every attack's progress at INFO; the report has its own.
logging.getLogger("art").setLevel(logging.WARNING)


def art_classifier(model: nn.Module, image_size: int = 8) -> Any:
    """``model`` wrapped in ART's PyTorchClassifier: logits out, pixels clipped to [0, 1]."""
    model.eval()
    return art.estimators.classification.PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, image_size, image_size),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def _as_art(images: torch.Tensor) -> np.ndarray:
    array: np.ndarray = images.reshape(len(images), 1, *images.shape[-2:]).numpy()
    return array.astype(np.float32)


def _accuracy(model: nn.Module, adversarial: np.ndarray, labels: torch.Tensor) -> float:
    with torch.no_grad(), eval_mode(model):
        predictions = model(torch.from_numpy(adversarial.astype(np.float32))).argmax(dim=1)
    return float((predictions == labels).float().mean())


def art_fgsm_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float
) -> float:

    attack = art.attacks.evasion.FastGradientMethod(
        art_classifier(model, images.shape[-1]), norm=np.inf, eps=eps, batch_size=512
    )
    # With y, ART attacks the true labels as ours do (without, it uses the model's predictions).
    return _accuracy(model, attack.generate(x=_as_art(images), y=labels.numpy()), labels)


def art_pgd_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: PGDConfig
) -> float:

    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    attack = art.attacks.evasion.ProjectedGradientDescent(
        art_classifier(model, images.shape[-1]),
        norm=np.inf,
        eps=config.eps,
        eps_step=config.alpha,
        max_iter=config.steps,
        num_random_init=1 if config.random_start else 0,
        batch_size=512,
        verbose=False,
    )
    return _accuracy(model, attack.generate(x=_as_art(images), y=labels.numpy()), labels)


@dataclasses.dataclass(frozen=True)
class AutoAttackConfig:
    eps: float = 0.1
    apgd_iterations: int = 100
    """Iterations of each APGD run (cross-entropy, then DLR)."""

    apgd_restarts: int = 1
    square_queries: int = 1000
    """Square Attack iterations (AutoAttack's standard is 5000)."""

    seed: int = 0


def art_autoattack_accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: AutoAttackConfig
) -> float:
    """Robust accuracy under ART's AutoAttack with APGD-CE, APGD-DLR and Square (L-inf): an input
    counts as robust only if every attack fails on it."""
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    classifier = art_classifier(model, images.shape[-1])
    step = config.eps / 4
    attacks = [
        art.attacks.evasion.AutoProjectedGradientDescent(
            classifier,
            norm=np.inf,
            eps=config.eps,
            eps_step=step,
            max_iter=config.apgd_iterations,
            nb_random_init=config.apgd_restarts,
            loss_type=loss_type,
            batch_size=512,
            verbose=False,
        )
        for loss_type in ("cross_entropy", "difference_logits_ratio")
    ]
    attacks.append(
        art.attacks.evasion.SquareAttack(
            classifier,
            norm=np.inf,
            eps=config.eps,
            max_iter=config.square_queries,
            nb_restarts=1,
            batch_size=512,
            verbose=False,
        )
    )
    attack = art.attacks.evasion.AutoAttack(
        classifier, norm=np.inf, eps=config.eps, eps_step=step, attacks=attacks, batch_size=512
    )
    adversarial = attack.generate(x=_as_art(images), y=labels.numpy())
    return _accuracy(model, adversarial, labels)
