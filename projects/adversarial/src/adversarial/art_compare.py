"""ART's poisoning, membership-inference and extraction attacks on the same models, data and seeds
as the hand-written ones in :mod:`adversarial.poisoning` and :mod:`adversarial.privacy`, so the
report can put the two side by side."""

from __future__ import annotations

import dataclasses
import struct
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import art.attacks.extraction  # type: ignore[import-untyped]  # pants: no-infer-dep
import art.attacks.inference  # type: ignore[import-untyped]  # pants: no-infer-dep
import art.attacks.poisoning  # type: ignore[import-untyped]  # pants: no-infer-dep
import art.attacks.poisoning.perturbations  # type: ignore[import-untyped]  # pants: no-infer-dep
import art.estimators.classification  # type: ignore[import-untyped]  # pants: no-infer-dep
import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from adversarial.art_check import art_classifier
from adversarial.attacks import accuracy
from adversarial.models import train_cnn
from adversarial.poisoning import BackdoorConfig, attack_success_rate
from adversarial.privacy import agreement, membership_inference
from vision.data import Split
from vision.training import FitConfig

BACKDOOR_TOLERANCE = 0.02
"""Largest gap in attack success or clean accuracy between ours and ART's backdoor that counts as
agreement: the two poisoned training sets differ only in ART's 8-bit rounding of the poisoned
images' other pixels (< 1/255), the CNNs start from the same weights and see the same batches, so
what is left is training noise of a few test images (one of 360 is 0.28 points)."""


def _grey_png(side: int, level: int) -> bytes:
    """A ``side`` x ``side`` 8-bit greyscale PNG of one ``level`` (the trigger file ART reads)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([level]) * side for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def art_trigger(images: np.ndarray, config: BackdoorConfig) -> np.ndarray:
    """``images`` (N, H, W) with ``config``'s trigger stamped by ART's ``insert_image``: a ``patch``
    x ``patch`` PNG of ``value`` pasted at the bottom-right corner, fully opaque.

    ART rounds every pixel down to 8 bits on the way (PIL), so pixels off the patch move by < 1/255.
    """
    height, width = images.shape[-2:]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "trigger.png"
        level = int(round(config.value * 255))
        path.write_bytes(_grey_png(config.patch, level))
        stamped = art.attacks.poisoning.perturbations.insert_image(
            images[..., None],
            backdoor_path=str(path),
            channels_first=False,
            random=False,
            x_shift=width - config.patch,
            y_shift=height - config.patch,
            mode="L",
            blend=1.0,
        )
    result: np.ndarray = np.asarray(stamped, dtype=np.float32).reshape(images.shape)
    return result


def art_poison(train: Split, indices: np.ndarray, config: BackdoorConfig) -> Split:
    """``train`` with the images at ``indices`` poisoned by ART's ``PoisoningAttackBackdoor``
    (:func:`art_trigger`, relabelled to the target); the others are untouched."""
    attack = art.attacks.poisoning.PoisoningAttackBackdoor(lambda batch: art_trigger(batch, config))
    stamped, targets = attack.poison(
        train.images[indices], y=np.full(len(indices), config.target, dtype=train.labels.dtype)
    )
    images = train.images.copy()
    labels = train.labels.copy()
    images[indices] = stamped
    labels[indices] = targets
    return Split(images, labels)


def art_attack_success_rate(model: nn.Module, test: Split, config: BackdoorConfig) -> float:
    """:func:`adversarial.poisoning.attack_success_rate` with ART's trigger."""
    return attack_success_rate(model, test, config, trigger=art_trigger)


@dataclasses.dataclass(frozen=True)
class BackdoorComparison:
    ours_attack_success: float
    art_attack_success: float
    ours_clean_accuracy: float
    art_clean_accuracy: float
    max_off_patch_pixel_difference: float
    """Largest change ART's 8-bit rounding made to a poisoned image outside the patch."""

    tolerance: float = BACKDOOR_TOLERANCE
    agrees: bool = False


def compare_backdoor(
    train: Split,
    validation: Split,
    test: Split,
    indices: np.ndarray,
    config: BackdoorConfig,
    fit_config: FitConfig,
    ours: tuple[float, float],
    description: str = "backdoored (ART)",
) -> BackdoorComparison:
    """Poison the same ``indices`` of ``train`` with ART, train the same CNN recipe (``fit_config``,
    same seed) and compare its (attack success, clean accuracy) with ``ours``."""
    poisoned = art_poison(train, indices, config)
    model = train_cnn(poisoned, validation, fit_config, description=description)
    art_success = art_attack_success_rate(model, test, config)
    art_clean = accuracy(model, torch.from_numpy(test.images), torch.from_numpy(test.labels))
    patch = np.zeros(train.images.shape[-2:], dtype=bool)
    patch[-config.patch :, -config.patch :] = True
    difference = np.abs(poisoned.images[indices] - train.images[indices])[:, ~patch]
    return BackdoorComparison(
        ours_attack_success=ours[0],
        art_attack_success=art_success,
        ours_clean_accuracy=ours[1],
        art_clean_accuracy=art_clean,
        max_off_patch_pixel_difference=float(difference.max()) if difference.size else 0.0,
        agrees=abs(art_success - ours[0]) <= BACKDOOR_TOLERANCE
        and abs(art_clean - ours[1]) <= BACKDOOR_TOLERANCE,
    )


def _as_art(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), 1, *images.shape[-2:]).astype(np.float32)


def _halves(split: Split) -> tuple[Split, Split]:
    middle = len(split) // 2
    return (
        Split(split.images[:middle], split.labels[:middle]),
        Split(split.images[middle:], split.labels[middle:]),
    )


def art_membership_scores(
    model: nn.Module,
    fit_members: Split,
    fit_nonmembers: Split,
    members: Split,
    nonmembers: Split,
    input_type: str,
    seed: int = 0,
) -> np.ndarray:
    """ART's ``MembershipInferenceBlackBox`` (a random forest on the model's per-example loss or its
    outputs, with the label) fitted on ``fit_members`` / ``fit_nonmembers``; its membership
    probability for each of ``members`` then ``nonmembers``."""
    np.random.seed(seed)
    attack = art.attacks.inference.membership_inference.MembershipInferenceBlackBox(
        art_classifier(model, members.images.shape[-1]),
        input_type=input_type,
        attack_model_type="rf",
    )
    attack.fit(
        x=_as_art(fit_members.images),
        y=fit_members.labels,
        test_x=_as_art(fit_nonmembers.images),
        test_y=fit_nonmembers.labels,
    )
    scores = [
        attack.infer(_as_art(split.images), split.labels, probabilities=True)
        for split in (members, nonmembers)
    ]
    result: np.ndarray = np.concatenate(scores).astype(np.float64).ravel()
    return result


def art_rule_based_membership(model: nn.Module, members: Split, nonmembers: Split) -> np.ndarray:
    """ART's ``MembershipInferenceBlackBoxRuleBased`` (member iff classified correctly), 0 or 1 for
    each of ``members`` then ``nonmembers``."""
    attack = art.attacks.inference.membership_inference.MembershipInferenceBlackBoxRuleBased(
        art_classifier(model, members.images.shape[-1])
    )
    # One-hot labels: given class indices, ART 1.20.1 counts the classes present in ``y`` and
    # fails when a class is missing from it.
    scores = [
        attack.infer(_as_art(split.images), np.eye(10, dtype=np.float32)[split.labels])
        for split in (members, nonmembers)
    ]
    result: np.ndarray = np.concatenate(scores).astype(np.float64).ravel()
    return result


def compare_membership_inference(
    model: nn.Module, members: Split, nonmembers: Split, seed: int = 0
) -> dict[str, float | int]:
    """ROC AUC of ART's membership attacks beside our loss threshold, all on the same evaluation
    records: ART's trained attacks learn on the first half of the members and of the non-members,
    and every AUC (ours included) is measured on the second halves."""
    fit_members, eval_members = _halves(members)
    fit_nonmembers, eval_nonmembers = _halves(nonmembers)
    truth = np.concatenate([np.ones(len(eval_members)), np.zeros(len(eval_nonmembers))])
    result: dict[str, float | int] = {
        "evaluated_members": len(eval_members),
        "evaluated_nonmembers": len(eval_nonmembers),
        "ours_loss_threshold_auc": membership_inference(model, eval_members, eval_nonmembers).auc,
    }
    for input_type in ("loss", "prediction"):
        scores = art_membership_scores(
            model, fit_members, fit_nonmembers, eval_members, eval_nonmembers, input_type, seed
        )
        result[f"art_black_box_{input_type}_auc"] = float(roc_auc_score(truth, scores))
    rule = art_rule_based_membership(model, eval_members, eval_nonmembers)
    result["art_rule_based_auc"] = float(roc_auc_score(truth, rule))
    return result


def art_copycat(
    victim: nn.Module,
    pool: np.ndarray,
    query_counts: Sequence[int],
    evaluation: np.ndarray,
    make_surrogate: Callable[[], nn.Module],
    config: FitConfig,
) -> list[dict[str, float]]:
    """ART's ``CopycatCNN``: ``n`` pool images drawn at random (numpy, seeded), labelled by the
    victim's argmax, a fresh surrogate trained on them for ``config.epochs`` epochs with AdamW at
    ``config``'s learning rate, weight decay and batch size (ART's plain loop: no shifts, no
    schedule); its agreement with the victim on ``evaluation``, one row per ``n``."""
    victim_art = art_classifier(victim, pool.shape[-1])
    rows = []
    for count in query_counts:
        if count > len(pool):
            raise ValueError(f"{count} queries asked for but the pool holds {len(pool)} images.")
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        surrogate = make_surrogate()
        thief = art.estimators.classification.PyTorchClassifier(
            model=surrogate,
            loss=nn.CrossEntropyLoss(),
            optimizer=torch.optim.AdamW(
                surrogate.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
            ),
            input_shape=(1, pool.shape[-2], pool.shape[-1]),
            nb_classes=10,
            clip_values=(0.0, 1.0),
            device_type="cpu",
        )
        attack = art.attacks.extraction.CopycatCNN(
            victim_art,
            batch_size_fit=config.batch_size,
            batch_size_query=512,
            nb_epochs=config.epochs,
            nb_stolen=count,
        )
        attack.extract(_as_art(pool), thieved_classifier=thief)
        rows.append({"queries": count, "agreement": agreement(victim, surrogate, evaluation)})
    return rows
