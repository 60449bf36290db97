"""Privacy attacks: membership inference by a loss threshold, and model extraction."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from adversarial.attacks import eval_mode
from vision.data import Split
from vision.training import FitConfig, fit


@torch.no_grad()
def per_example_loss(model: nn.Module, split: Split) -> np.ndarray:
    with eval_mode(model):
        logits = model(torch.from_numpy(split.images))
        losses = nn.functional.cross_entropy(
            logits, torch.from_numpy(split.labels), reduction="none"
        )
    return losses.numpy()


@dataclasses.dataclass(frozen=True)
class MembershipResult:
    auc: float
    """ROC AUC of "lower loss = member" (0.5: no leak)."""

    advantage: float
    """Best threshold's true-positive minus false-positive rate."""

    member_loss: float
    nonmember_loss: float


def membership_inference(model: nn.Module, members: Split, nonmembers: Split) -> MembershipResult:
    """Loss-threshold membership inference (Yeom et al.

    2018): members have lower loss.
    """
    member_losses = per_example_loss(model, members)
    nonmember_losses = per_example_loss(model, nonmembers)
    scores = -np.concatenate([member_losses, nonmember_losses])
    truth = np.concatenate([np.ones(len(member_losses)), np.zeros(len(nonmember_losses))])
    thresholds = np.unique(scores)
    advantage = max(
        float((scores[truth == 1] >= t).mean() - (scores[truth == 0] >= t).mean())
        for t in thresholds
    )
    return MembershipResult(
        auc=float(roc_auc_score(truth, scores)),
        advantage=advantage,
        member_loss=float(member_losses.mean()),
        nonmember_loss=float(nonmember_losses.mean()),
    )


@torch.no_grad()
def agreement(first: nn.Module, second: nn.Module, images: np.ndarray) -> float:
    """Share of ``images`` on which two models predict the same class."""
    batch = torch.from_numpy(images)
    with eval_mode(first), eval_mode(second):
        return float((first(batch).argmax(1) == second(batch).argmax(1)).float().mean())


def extract(
    victim: nn.Module,
    pool: np.ndarray,
    query_counts: Sequence[int],
    evaluation: np.ndarray,
    make_surrogate: Callable[[], nn.Module],
    config: FitConfig,
) -> list[dict[str, float]]:
    """Model extraction: label the first ``n`` pool images with the victim's answers (its argmax,
    one query each), train a surrogate on them, and measure its agreement with the victim on
    ``evaluation`` images; one row per ``n`` in ``query_counts``."""
    with torch.no_grad(), eval_mode(victim):
        stolen = victim(torch.from_numpy(pool)).argmax(dim=1).numpy()
    rows = []
    for count in query_counts:
        if count > len(pool):
            raise ValueError(f"{count} queries asked for but the pool holds {len(pool)} images.")
        labelled = Split(pool[:count], stolen[:count])
        surrogate = make_surrogate()
        # No held-out answers to early-stop on: train for the full budget on what was stolen.
        fit(
            surrogate,
            labelled,
            labelled,
            dataclasses.replace(config, early_stopping=False),
            progress=False,
        )
        rows.append({"queries": count, "agreement": agreement(victim, surrogate, evaluation)})
    return rows
