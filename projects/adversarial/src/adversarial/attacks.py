"""Evasion attacks on a classifier of images in [0, 1], all under an L-inf budget ``eps``.

White-box: :func:`fgsm` and :func:`pgd` (random start, steps, step size), each with the cross-
entropy loss on softmax outputs or a Carlini-Wagner-style logit margin. Black-box: :func:`simba`,
which only reads probabilities and counts its queries, and :func:`transfer` (PGD on a surrogate,
evaluated on the victim).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Literal

import torch
from torch import nn

from ml_core.cli import ConfigError, require, require_positive

Loss = Literal["ce", "margin"]
ATTACK_NAMES = ("fgsm", "pgd", "pgd-margin", "simba")


def check_eps(eps: float, field: str = "eps") -> None:
    """An L-inf budget for pixels in [0, 1] must be in (0, 1]."""
    require(
        isinstance(eps, (int, float)) and 0 < eps <= 1,
        field,
        f"must be in (0, 1] (pixels are in [0, 1]), got {eps!r}",
    )


@dataclasses.dataclass(frozen=True)
class FGSMConfig:
    eps: float = 0.1
    """L-inf budget."""

    loss: Loss = "ce"
    """Ce: cross-entropy of the softmax; margin: best other logit minus the true one."""

    def __post_init__(self) -> None:
        check_eps(self.eps)
        require(self.loss in ("ce", "margin"), "loss", f"unknown loss {self.loss!r}")


@dataclasses.dataclass(frozen=True)
class PGDConfig:
    eps: float = 0.1
    """L-inf budget."""

    steps: int = 20
    """Gradient-sign steps."""

    step_size: float | None = None
    """Step per iteration (unset: 2.5 * eps / steps, Madry et al.)."""

    random_start: bool = True
    """Start from a uniform point in the eps-ball."""

    loss: Loss = "ce"
    """Ce: cross-entropy of the softmax; margin: best other logit minus the true one."""

    seed: int = 0
    """Seeds the random start."""

    def __post_init__(self) -> None:
        check_eps(self.eps)
        require_positive(self, "steps", "step_size")
        require(self.loss in ("ce", "margin"), "loss", f"unknown loss {self.loss!r}")

    @property
    def alpha(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps


@dataclasses.dataclass(frozen=True)
class SimBAConfig:
    eps: float = 0.1
    """L-inf budget: each pixel moves by +eps or -eps, or not at all."""

    seed: int = 0
    """Seeds the order in which pixels are tried."""

    def __post_init__(self) -> None:
        check_eps(self.eps)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode (BatchNorm statistics, no dropout), then restore the previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example: the largest wrong logit minus the true one (> 0 means misclassified)."""
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.masked_fill(nn.functional.one_hot(labels, logits.shape[1]).bool(), -torch.inf)
    return others.max(dim=1).values - true


def attack_loss(logits: torch.Tensor, labels: torch.Tensor, loss: Loss) -> torch.Tensor:
    """The summed loss an untargeted attack ascends."""
    if loss == "margin":
        return margin(logits, labels).sum()
    return nn.functional.cross_entropy(logits, labels, reduction="sum")


def project(adversarial: torch.Tensor, images: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip into the L-inf ball of radius ``eps`` around ``images`` and into [0, 1]."""
    return torch.clamp(torch.minimum(torch.maximum(adversarial, images - eps), images + eps), 0, 1)


def _gradient(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, loss: Loss
) -> torch.Tensor:
    inputs = inputs.detach().requires_grad_(True)
    value = attack_loss(model(inputs), labels, loss)
    (gradient,) = torch.autograd.grad(value, inputs)
    return gradient


def fgsm(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: FGSMConfig
) -> torch.Tensor:
    """One signed-gradient step of size eps (Goodfellow et al.

    2015).
    """
    with eval_mode(model):
        gradient = _gradient(model, images, labels, config.loss)
    return project(images + config.eps * gradient.sign(), images, config.eps).detach()


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: PGDConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent in the L-inf ball (Madry et al.

    2018).     ``generator`` (default: one seeded with ``config.seed``) draws the random start.
    """
    images = images.detach()
    if config.random_start:
        generator = generator or torch.Generator().manual_seed(config.seed)
        noise = torch.rand(images.shape, generator=generator, dtype=images.dtype) * 2 - 1
        adversarial = project(images + config.eps * noise.to(images.device), images, config.eps)
    else:
        adversarial = images.clone()
    with eval_mode(model):
        for _ in range(config.steps):
            gradient = _gradient(model, adversarial, labels, config.loss)
            adversarial = project(adversarial + config.alpha * gradient.sign(), images, config.eps)
    return adversarial.detach()


@dataclasses.dataclass(frozen=True)
class SimBAResult:
    adversarial: torch.Tensor
    queries: torch.Tensor
    """Probability queries spent per image (the first, clean query included)."""

    success: torch.Tensor
    """Misclassified at the end (already-wrong images count, with one query)."""


ProbabilityOracle = Callable[[torch.Tensor], torch.Tensor]


def probability_oracle(model: nn.Module) -> ProbabilityOracle:
    """Black-box access: class probabilities of a batch, nothing else."""

    def query(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), eval_mode(model):
            return torch.softmax(model(images), dim=1)

    return query


def simba(
    oracle: ProbabilityOracle, images: torch.Tensor, labels: torch.Tensor, config: SimBAConfig
) -> SimBAResult:
    """Simple black-box attack (Guo et al.

    2019) in the pixel basis, L-inf version.     Pixels are tried in a random order; each is moved
    by +eps, else -eps, and the move is kept when     the true class's probability drops. Stops per
    image once it is misclassified; at most     ``2 * pixels + 1`` queries per image.
    """
    count = len(images)
    flat_clean = images.reshape(count, -1)
    flat = flat_clean.clone()
    pixels = flat.shape[1]
    rows = torch.arange(count)
    probabilities = oracle(images)
    queries = torch.ones(count, dtype=torch.long)
    true_probability = probabilities[rows, labels]
    done = probabilities.argmax(dim=1) != labels
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.argsort(torch.rand(count, pixels, generator=generator), dim=1)
    for position in range(pixels):
        pending = (~done).nonzero().squeeze(1)
        for sign in (1.0, -1.0):
            if len(pending) == 0:
                break
            pixel = order[pending, position]
            candidate = flat[pending].clone()
            candidate[torch.arange(len(pending)), pixel] = torch.clamp(
                flat_clean[pending, pixel] + sign * config.eps, 0, 1
            )
            probabilities = oracle(candidate.reshape((len(pending), *images.shape[1:])))
            queries[pending] += 1
            new_true = probabilities[torch.arange(len(pending)), labels[pending]]
            better = new_true < true_probability[pending]
            accepted = pending[better]
            flat[accepted] = candidate[better]
            true_probability[accepted] = new_true[better]
            done[accepted] = probabilities[better].argmax(dim=1) != labels[accepted]
            pending = pending[~better]
        if bool(done.all()):
            break
    return SimBAResult(flat.reshape(images.shape), queries, done.clone())


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` classified as ``labels``."""
    with eval_mode(model):
        return float((model(images).argmax(dim=1) == labels).float().mean())


def transfer(
    surrogate: nn.Module,
    victim: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: PGDConfig,
) -> tuple[torch.Tensor, float]:
    """PGD crafted on ``surrogate`` (white-box) and scored on ``victim``: the adversarial images and
    the victim's accuracy on them."""
    adversarial = pgd(surrogate, images, labels, config)
    return adversarial, accuracy(victim, adversarial, labels)


def run_attack(
    name: str,
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    seed: int = 0,
) -> torch.Tensor:
    """Adversarial images from the attack called ``name`` (one of :data:`ATTACK_NAMES`), with its
    default settings at ``eps``."""
    if name not in ATTACK_NAMES:
        raise ConfigError(
            "attack", f"unknown attack {name!r}; choose one of {', '.join(ATTACK_NAMES)}"
        )
    check_eps(eps)
    if name == "fgsm":
        return fgsm(model, images, labels, FGSMConfig(eps=eps))
    if name == "simba":
        return simba(probability_oracle(model), images, labels, SimBAConfig(eps, seed)).adversarial
    loss: Loss = "margin" if name == "pgd-margin" else "ce"
    return pgd(model, images, labels, PGDConfig(eps=eps, loss=loss, seed=seed))


__all__ = [
    "ATTACK_NAMES",
    "FGSMConfig",
    "PGDConfig",
    "SimBAConfig",
    "SimBAResult",
    "accuracy",
    "fgsm",
    "margin",
    "pgd",
    "probability_oracle",
    "run_attack",
    "simba",
    "transfer",
]
